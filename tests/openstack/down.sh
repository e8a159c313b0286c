#!/usr/bin/env bash
# Stops every service tests/openstack/up.sh started, newest first (by the process
# groups it recorded; nothing else is touched). Data, packages, images and
# credentials stay: up.sh starts the same cloud again.
#
#   tests/openstack/down.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root"
began=$(date +%s)
mkdir -p "$OS_LOGS" "$OS_RUN"
reversed=()
for ((i = ${#OS_SERVICES[@]} - 1; i >= 0; i--)); do
    reversed+=("${OS_SERVICES[$i]}")
done
stop_services "${reversed[@]}"
# Guests libvirt left running (it was stopped above) belong to Nova's instances.
for pidfile in /run/libvirt/qemu/instance-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" && log "stopped guest ${pidfile##*/}"
    fi
done
# The DHCP agent's dnsmasq daemons leave its session; they are found by the pid
# files the agent gives them (one per network).
for pidfile in /var/lib/neutron/dhcp/*/pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = dnsmasq ]; then
        kill -TERM "$pid" && log "stopped dnsmasq of network $(basename "$(dirname "$pidfile")")"
    fi
done
log "down.sh done in $(($(date +%s) - began)) s"
