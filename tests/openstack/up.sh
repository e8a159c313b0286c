#!/usr/bin/env bash
# Installs and starts a single-node OpenStack Zed from Debian 12's own packages, by
# hand (no systemd): MariaDB, RabbitMQ, memcached, Keystone, Glance, Placement, Nova
# (api, conductor, scheduler, compute on libvirt with virt_type=qemu,
# spicehtml5proxy) and Neutron (API, RPC server, linuxbridge, DHCP and L3 agents).
# Then uploads the demo and probe images, makes the flavors and networks thindesk's
# tests use, the "outside world" behind the external network (a network namespace),
# and writes the credentials thindesk reads.
#
#   tests/openstack/up.sh          # as root; idempotent: reuses what already runs
#   tests/openstack/down.sh        # stops every service (keeps data and packages)
#
# Facts behind the choices here: ../shared/openstack-notes.md (the numbers below).
# Logs: $OS_LOGS (default /var/log/thindesk-openstack), one file per service.
# State, passwords (0600) and pid files: $OS_STATE (default /var/lib/thindesk-openstack).
# Credentials for thindesk: $OS_STATE/clouds.yaml (0600), cloud name `thindesk`,
# with Keystone at http://127.0.0.1:35357/v3 (not 5000: that is thindesk's port).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root"
began=$(date +%s)
mkdir -p "$OS_STATE" "$OS_LOGS" "$OS_RUN"
chmod 700 "$OS_STATE"
exec > >(tee -a "$OS_LOGS/up.log") 2>&1
log "up.sh begins; logs in $OS_LOGS"

# ---------------------------------------------------------------- packages
PACKAGES=(mariadb-server python3-pymysql rabbitmq-server memcached python3-memcache
    keystone glance-api placement-api nova-api nova-conductor nova-scheduler
    nova-compute-kvm nova-consoleproxy spice-html5 libvirt-daemon-system
    libvirt-clients python3-openstackclient crudini neutron-server
    neutron-linuxbridge-agent uwsgi-plugin-python3 iptables ipset bridge-utils
    # DHCP (dnsmasq) and routers (namespaces); genisoimage makes Nova's config drives
    neutron-dhcp-agent neutron-l3-agent dnsmasq-base genisoimage
    # the demo image's recipe (assets/demo-image/build.sh)
    busybox-static syslinux syslinux-common mtools dosfstools qemu-utils)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${#missing[@]} packages: ${missing[*]}"
    # Keep the postinst scripts from starting services (nova-compute-kvm pulls
    # QEMU; nova-compute-qemu would conflict with QEMU 10 from backports, notes 1).
    made_policy=no
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=yes
    fi
    t=$(date +%s)
    # A fresh box has no package lists yet.
    apt-get update -q >>"$OS_LOGS/apt.log" 2>&1 || die "apt-get update failed; see $OS_LOGS/apt.log"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$OS_LOGS/apt.log" 2>&1; then
        [ $made_policy = no ] || rm -f /usr/sbin/policy-rc.d
        die "apt-get install failed; see $OS_LOGS/apt.log"
    fi
    [ $made_policy = no ] || rm -f /usr/sbin/policy-rc.d
    log "packages installed in $(($(date +%s) - t)) s"
else
    log "packages: all ${#PACKAGES[@]} already installed"
fi

# ---------------------------------------------------------------- secrets
# Generated once, kept 0600; they reach the services through their config files
# (root:SERVICE 0640, as Debian ships them) and the tools through stdin or files,
# never through command lines.
secrets=$OS_STATE/secrets.env
if [ ! -f "$secrets" ]; then
    (
        umask 077
        for name in DB_KEYSTONE DB_GLANCE DB_PLACEMENT DB_NOVA DB_NEUTRON RABBIT \
            ADMIN GLANCE PLACEMENT NOVA NEUTRON THINDESK; do
            printf '%s_PASS=%s\n' "$name" "$(openssl rand -hex 16)"
        done >"$secrets.partial"
        mv "$secrets.partial" "$secrets"
    )
fi
# shellcheck source=/dev/null
. "$secrets"

# ---------------------------------------------------------------- infrastructure
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$OS_LOGS/mariadb.log" 2>&1
fi
cat >/etc/mysql/mariadb.conf.d/99-thindesk-openstack.cnf <<'EOF'
[mysqld]
bind-address = 127.0.0.1
max_connections = 500
innodb_buffer_pool_size = 64M
performance_schema = off
EOF
start_service mariadb mysql /usr/sbin/mariadbd
wait_for MariaDB 60 mariadb -e 'SELECT 1'

start_service memcached memcache /usr/bin/memcached -l 127.0.0.1 -p 11211 -m 64 -U 0

# RabbitMQ as its own user: started as root it re-execs through su and leaves the
# process group (notes 9). Loopback only, epmd included.
mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
chown rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
cat >/etc/rabbitmq/rabbitmq-env.conf <<'EOF'
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
# epmd in the foreground as a service of ours, so it does not daemonize out of reach.
start_service epmd rabbitmq /usr/bin/epmd -address 127.0.0.1
start_service rabbitmq rabbitmq env HOME=/var/lib/rabbitmq ERL_EPMD_ADDRESS=127.0.0.1 \
    /usr/lib/rabbitmq/bin/rabbitmq-server
# Listening on 5672 comes after RabbitMQ's boot steps (rabbitmqctl takes seconds).
wait_for RabbitMQ 120 port_open 5672
# The user is made (or its password set) again only when the password changed; the
# password goes in on stdin (rabbitmqctl reads it there when it is left out).
if [ "$(cat "$OS_STATE/done.rabbit-user" 2>/dev/null || true)" != "$(printf '%s' "$RABBIT_PASS" | sha256sum)" ]; then
    wait_for RabbitMQ 120 rabbitmqctl -n rabbit@localhost status
    if rabbitmqctl -n rabbit@localhost list_users 2>/dev/null | awk '{print $1}' | grep -x openstack >/dev/null; then
        printf '%s\n' "$RABBIT_PASS" | rabbitmqctl -n rabbit@localhost change_password openstack >/dev/null
    else
        printf '%s\n' "$RABBIT_PASS" | rabbitmqctl -n rabbit@localhost add_user openstack >/dev/null
    fi
    rabbitmqctl -n rabbit@localhost set_permissions openstack '.*' '.*' '.*' >/dev/null
    printf '%s' "$RABBIT_PASS" | sha256sum >"$OS_STATE/done.rabbit-user"
fi
TRANSPORT="rabbit://openstack:$RABBIT_PASS@127.0.0.1:5672/"

# Databases: created once, each user's password set again every run (so a lost
# secrets file heals).
mariadb <<EOF
CREATE DATABASE IF NOT EXISTS keystone;
CREATE DATABASE IF NOT EXISTS glance;
CREATE DATABASE IF NOT EXISTS placement;
CREATE DATABASE IF NOT EXISTS nova_api;
CREATE DATABASE IF NOT EXISTS nova;
CREATE DATABASE IF NOT EXISTS nova_cell0;
CREATE DATABASE IF NOT EXISTS neutron;
CREATE USER IF NOT EXISTS 'keystone'@'localhost';
CREATE USER IF NOT EXISTS 'glance'@'localhost';
CREATE USER IF NOT EXISTS 'placement'@'localhost';
CREATE USER IF NOT EXISTS 'nova'@'localhost';
CREATE USER IF NOT EXISTS 'neutron'@'localhost';
ALTER USER 'keystone'@'localhost' IDENTIFIED BY '$DB_KEYSTONE_PASS';
ALTER USER 'glance'@'localhost' IDENTIFIED BY '$DB_GLANCE_PASS';
ALTER USER 'placement'@'localhost' IDENTIFIED BY '$DB_PLACEMENT_PASS';
ALTER USER 'nova'@'localhost' IDENTIFIED BY '$DB_NOVA_PASS';
ALTER USER 'neutron'@'localhost' IDENTIFIED BY '$DB_NEUTRON_PASS';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost';
GRANT ALL PRIVILEGES ON glance.* TO 'glance'@'localhost';
GRANT ALL PRIVILEGES ON placement.* TO 'placement'@'localhost';
GRANT ALL PRIVILEGES ON nova_api.* TO 'nova'@'localhost';
GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'localhost';
GRANT ALL PRIVILEGES ON nova_cell0.* TO 'nova'@'localhost';
GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'localhost';
FLUSH PRIVILEGES;
EOF
db() { echo "mysql+pymysql://$1:$2@127.0.0.1/$3"; }

# ---------------------------------------------------------------- configuration
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT
# set_conf FILE SECTION KEY VALUE, the value through stdin: some are passwords.
set_conf() { printf '%s = %s\n' "$3" "$4" | crudini --merge "$1" "$2"; }

# authtoken FILE USER PASSWORD: the [keystone_authtoken] of an API service.
# region_name must be RegionOne: Debian ships regionOne (notes 5).
authtoken() {
    local file=$1 user=$2 pass=$3 section=${4:-keystone_authtoken}
    crudini --merge "$file" "$section" <<EOF
auth_url = $KEYSTONE_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $user
password = $pass
region_name = RegionOne
EOF
    if [ "$section" = keystone_authtoken ]; then
        crudini --merge "$file" "$section" <<EOF
www_authenticate_uri = $KEYSTONE_URL
memcached_servers = 127.0.0.1:11211
service_token_roles_required = true
EOF
    fi
}

# uwsgi_ini NAME PORT WSGI_FILE USER [THREADS]: our own ini, not Debian's (whose AppArmor
# plugin dies here and which asks for 8-16 processes, notes 2). Connection: close on
# every answer: clients saw resets on reused keep-alive connections (notes 3).
uwsgi_ini() {
    cat >"$OS_STATE/$1-uwsgi.ini" <<EOF
[uwsgi]
master = true
plugins = python3
http-socket = 127.0.0.1:$2
wsgi-file = $3
processes = 1
threads = ${5:-4}
lazy-apps = true
die-on-term = true
need-app = true
buffer-size = 65535
add-header = Connection: close
uid = $4
gid = $4
EOF
}

# Keystone
kc=/etc/keystone/keystone.conf
set_conf $kc database connection "$(db keystone "$DB_KEYSTONE_PASS" keystone)"
set_conf $kc token provider fernet
uwsgi_ini keystone "$KEYSTONE_PORT" /usr/bin/keystone-wsgi-public keystone

# Glance: plain glance-api, one worker (notes 3).
gc=/etc/glance/glance-api.conf
crudini --merge $gc DEFAULT <<EOF
bind_host = 127.0.0.1
bind_port = $GLANCE_PORT
workers = 1
enabled_backends = fs:file
EOF
set_conf $gc database connection "$(db glance "$DB_GLANCE_PASS" glance)"
set_conf $gc glance_store default_backend fs
set_conf $gc fs filesystem_store_datadir /var/lib/glance/images/
set_conf $gc os_glance_staging_store filesystem_store_datadir /var/lib/glance/staging/
set_conf $gc os_glance_tasks_store filesystem_store_datadir /var/lib/glance/tasks_work_dir/
set_conf $gc paste_deploy flavor keystone
authtoken $gc glance "$GLANCE_PASS"
mkdir -p /var/lib/glance/images /var/lib/glance/staging /var/lib/glance/tasks_work_dir
chown -R glance:glance /var/lib/glance

# Placement
pc=/etc/placement/placement.conf
set_conf $pc placement_database connection "$(db placement "$DB_PLACEMENT_PASS" placement)"
set_conf $pc api auth_strategy keystone
authtoken $pc placement "$PLACEMENT_PASS"
uwsgi_ini placement "$PLACEMENT_PORT" /usr/bin/placement-api placement

# Neutron: ML2 with flat networks on bridges made by hand with no uplink (this
# kernel has no dummy links, notes 8), linuxbridge (experimental in Zed). Each
# physnet's "physical interface" is one end of a veth pair whose other end is in
# the hand-made bridge: the agent enslaves it in the network's own bridge (brqNET),
# where Nova plugs the servers. (With bridge_mappings the agent put its own DHCP and
# router ports in the hand-made bridge, but Zed's linuxbridge driver does not tell
# Nova that bridge's name, so servers landed in an unconnected brqNET.)
nc=/etc/neutron/neutron.conf
crudini --merge $nc DEFAULT <<EOF
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $TRANSPORT
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
bind_host = 127.0.0.1
EOF
set_conf $nc database connection "$(db neutron "$DB_NEUTRON_PASS" neutron)"
set_conf $nc experimental linuxbridge true
set_conf $nc oslo_concurrency lock_path /var/lib/neutron/tmp
authtoken $nc neutron "$NEUTRON_PASS"
authtoken $nc nova "$NOVA_PASS" nova
ml2=/etc/neutron/plugins/ml2/ml2_conf.ini
crudini --merge $ml2 ml2 <<EOF
type_drivers = flat
tenant_network_types =
mechanism_drivers = linuxbridge
extension_drivers = port_security
EOF
set_conf $ml2 ml2_type_flat flat_networks 'physnet-public,physnet-lan,physnet-iso'
lb=/etc/neutron/plugins/ml2/linuxbridge_agent.ini
set_conf $lb linux_bridge bridge_mappings ''
set_conf $lb linux_bridge physical_interface_mappings 'physnet-public:tdos-public-up,physnet-lan:tdos-lan-up,physnet-iso:tdos-iso-up'
set_conf $lb vxlan enable_vxlan false
set_conf $lb securitygroup enable_security_group true
set_conf $lb securitygroup firewall_driver iptables
# DHCP and L3 agents plug their namespaces' ends into the bridges through the
# linuxbridge agent. No metadata agent: guests read Nova's config drive instead (the
# isolated security group would drop their requests to 169.254.169.254 anyway).
dh=/etc/neutron/dhcp_agent.ini
crudini --merge $dh DEFAULT <<EOF
interface_driver = linuxbridge
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = false
force_metadata = false
EOF
l3=/etc/neutron/l3_agent.ini
crudini --merge $l3 DEFAULT <<EOF
interface_driver = linuxbridge
enable_metadata_proxy = false
EOF
mkdir -p /var/lib/neutron/tmp && chown -R neutron:neutron /var/lib/neutron
for bridge in tdos-public tdos-lan tdos-iso; do
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    ip link show "$bridge-up" >/dev/null 2>&1 || ip link add "$bridge-up" type veth peer name "$bridge-sw"
    ip link set "$bridge-sw" master "$bridge"
    # No address of the host on the guests' links, not even IPv6 link-local: the
    # host's root namespace (where thindesk and the cloud's APIs listen) is then on
    # none of them. The brqNET bridges and the taps come later: no IPv6 on any new
    # link of the root namespace (namespaces have their own setting).
    for link in "$bridge" "$bridge-up" "$bridge-sw"; do
        sysctl -q -w "net.ipv6.conf.$link.disable_ipv6=1"
        ip link set "$link" up
    done
done
sysctl -q -w net.ipv6.conf.default.disable_ipv6=1
for link in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(brq|tap)'); do
    sysctl -q -w "net.ipv6.conf.$link.disable_ipv6=1"
done
# The outside world of the external network `public`: a namespace holding the
# public subnet's gateway 203.0.113.1, on tdos-public through a veth pair, with no
# route anywhere else. The routers' SNAT reaches it; a test runs its listener in it
# (ip netns exec tdos-outside ...). It is not the host: the host has no address on
# tdos-public and the namespace forwards nothing.
ip netns list | awk '{print $1}' | grep -x tdos-outside >/dev/null || ip netns add tdos-outside
if ! ip link show tdos-out >/dev/null 2>&1; then
    ip link add tdos-out type veth peer name tdos-out-ns netns tdos-outside
fi
ip link set tdos-out master tdos-public
sysctl -q -w net.ipv6.conf.tdos-out.disable_ipv6=1
ip link set tdos-out up
ip -n tdos-outside addr replace 203.0.113.1/24 dev tdos-out-ns
ip netns exec tdos-outside sysctl -q -w net.ipv4.ip_forward=0
ip -n tdos-outside link set tdos-out-ns up
ip -n tdos-outside link set lo up
neutron_args=(--config-file=/etc/neutron/neutron.conf --config-file=/etc/neutron/plugins/ml2/ml2_conf.ini)
# One thread: neutron's eventlet-patched code under uwsgi threads logs "greenlet.error:
# cannot switch to a different thread".
uwsgi_ini neutron-api "$NEUTRON_PORT" /usr/bin/neutron-api neutron 1
echo "pyargv = ${neutron_args[*]}" >>"$OS_STATE/neutron-api-uwsgi.ini"
# The API alone is enough without agents; the RPC server serves the agent.

# Nova
nvc=/etc/nova/nova.conf
crudini --merge $nvc DEFAULT <<EOF
transport_url = $TRANSPORT
my_ip = 127.0.0.1
enabled_apis = osapi_compute
osapi_compute_workers = 1
metadata_workers = 1
compute_driver = libvirt.LibvirtDriver
state_path = /var/lib/nova
EOF
set_conf $nvc api_database connection "$(db nova "$DB_NOVA_PASS" nova_api)"
set_conf $nvc database connection "$(db nova "$DB_NOVA_PASS" nova)"
set_conf $nvc api auth_strategy keystone
set_conf $nvc conductor workers 1
set_conf $nvc scheduler workers 1
set_conf $nvc scheduler discover_hosts_in_cells_interval 30
set_conf $nvc glance api_servers "http://127.0.0.1:$GLANCE_PORT"
set_conf $nvc oslo_concurrency lock_path /var/lib/nova/tmp
set_conf $nvc vnc enabled false
authtoken $nvc nova "$NOVA_PASS"
authtoken $nvc placement "$PLACEMENT_PASS" placement
authtoken $nvc nova "$NOVA_PASS" service_user
set_conf $nvc service_user send_service_user_token true
authtoken $nvc neutron "$NEUTRON_PASS" neutron
crudini --merge $nvc spice <<EOF
enabled = true
agent_enabled = false
server_listen = 127.0.0.1
server_proxyclient_address = 127.0.0.1
html5proxy_host = 127.0.0.1
html5proxy_port = $SPICE_PROXY_PORT
html5proxy_base_url = http://127.0.0.1:$SPICE_PROXY_PORT/spice_auto.html
EOF
set_conf $nvc DEFAULT web /usr/share/spice-html5
ncc=/etc/nova/nova-compute.conf
set_conf $ncc libvirt virt_type qemu
set_conf $ncc libvirt cpu_mode none
# A soft reboot the guest ignores becomes a hard one after this long (default 120 s):
# a guest still booting under TCG has no ACPI daemon yet.
set_conf $ncc libvirt wait_soft_reboot_seconds 30
# One thread, as neutron's: with four, eventlet (nova-api is monkey-patched) handed
# RPC replies to a waiter in another thread ("greenlet.error: cannot switch to a
# different thread" in nova-api.log) and console-output calls failed after 60 s with
# MessagingTimeout now and then.
uwsgi_ini nova-api "$NOVA_PORT" /usr/bin/nova-api-wsgi nova 1
mkdir -p /var/lib/nova/tmp /var/lib/nova/instances && chown -R nova:nova /var/lib/nova

# libvirt: root's libvirtd; nova reaches it through the socket of group libvirt
# without polkit, which needs D-Bus (notes 6). No default network (it wants dnsmasq).
crudini --merge /etc/libvirt/libvirtd.conf '' <<'EOF'
unix_sock_group = "libvirt"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
rm -f /etc/libvirt/qemu/networks/autostart/default.xml
getent group libvirt | awk -F: '{print $4}' | tr ',' '\n' | grep -x nova >/dev/null ||
    usermod -a -G libvirt nova

# ---------------------------------------------------------------- schemas
# Each sync runs again only when the package's version changes.
synced() {
    local step=$1 version=$2
    [ -f "$OS_STATE/done.$step" ] && [ "$(cat "$OS_STATE/done.$step")" = "$version" ]
}
mark_synced() { echo "$2" >"$OS_STATE/done.$1"; }
version_of() { dpkg-query -W -f '${Version}' "$1"; }
as() { local user=$1; shift; setpriv --reuid "$user" --regid "$user" --init-groups "$@"; }

v=$(version_of keystone)
if ! synced keystone "$v"; then
    log "keystone: database, fernet keys, bootstrap"
    as keystone keystone-manage db_sync >>"$OS_LOGS/keystone-manage.log" 2>&1
    keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone >>"$OS_LOGS/keystone-manage.log" 2>&1
    keystone-manage credential_setup --keystone-user keystone --keystone-group keystone >>"$OS_LOGS/keystone-manage.log" 2>&1
    mark_synced keystone "$v"
fi
# bootstrap is idempotent and takes the password from the environment; it runs
# again only when the admin's password changed.
if [ "$(cat "$OS_STATE/done.keystone-bootstrap" 2>/dev/null || true)" != "$(printf '%s' "$ADMIN_PASS" | sha256sum)" ]; then
    OS_BOOTSTRAP_PASSWORD=$ADMIN_PASS as keystone keystone-manage bootstrap \
        --bootstrap-admin-url "$KEYSTONE_URL/v3/" --bootstrap-internal-url "$KEYSTONE_URL/v3/" \
        --bootstrap-public-url "$KEYSTONE_URL/v3/" --bootstrap-region-id RegionOne \
        >>"$OS_LOGS/keystone-manage.log" 2>&1
    printf '%s' "$ADMIN_PASS" | sha256sum >"$OS_STATE/done.keystone-bootstrap"
fi
start_service keystone root uwsgi --ini "$OS_STATE/keystone-uwsgi.ini"
wait_for Keystone 120 curl -fsS "$KEYSTONE_URL/v3"

# Credentials files: the admin's for this script, thindesk's for thindesk.
write_clouds() {
    local file=$1 cloud=$2 user=$3 pass=$4 project=$5
    (
        umask 077
        cat >"$file.partial" <<EOF
clouds:
  $cloud:
    auth:
      auth_url: $KEYSTONE_URL/v3
      username: $user
      password: $pass
      project_name: $project
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
        mv "$file.partial" "$file"
    )
}
write_clouds "$OS_STATE/admin-clouds.yaml" admin admin "$ADMIN_PASS" admin
export OS_CLIENT_CONFIG_FILE=$OS_STATE/admin-clouds.yaml OS_CLOUD=admin

# Users, services and endpoints (all idempotent; passwords from the environment).
log "keystone: service users, catalogue, the thindesk project"
GLANCE_PASS=$GLANCE_PASS PLACEMENT_PASS=$PLACEMENT_PASS NOVA_PASS=$NOVA_PASS \
    NEUTRON_PASS=$NEUTRON_PASS THINDESK_PASS=$THINDESK_PASS \
    /usr/bin/python3 "$here/provision.py" identity "$KEYSTONE_PORT" "$GLANCE_PORT" "$PLACEMENT_PORT" \
    "$NOVA_PORT" "$NEUTRON_PORT"

v=$(version_of glance-api)
if ! synced glance "$v"; then
    log "glance: database"
    as glance glance-manage db_sync >>"$OS_LOGS/glance-manage.log" 2>&1
    mark_synced glance "$v"
fi
v=$(version_of placement-api)
if ! synced placement "$v"; then
    log "placement: database"
    as placement placement-manage db sync >>"$OS_LOGS/placement-manage.log" 2>&1
    mark_synced placement "$v"
fi
v=$(version_of neutron-server)
if ! synced neutron "$v"; then
    log "neutron: database"
    as neutron neutron-db-manage "${neutron_args[@]}" upgrade head >>"$OS_LOGS/neutron-manage.log" 2>&1
    mark_synced neutron "$v"
fi
v=$(version_of nova-api)
if ! synced nova "$v"; then
    log "nova: databases and cells"
    as nova nova-manage api_db sync >>"$OS_LOGS/nova-manage.log" 2>&1
    as nova nova-manage cell_v2 list_cells 2>/dev/null | awk '{print $2}' | grep -x cell0 >/dev/null ||
        as nova nova-manage cell_v2 map_cell0 >>"$OS_LOGS/nova-manage.log" 2>&1
    as nova nova-manage cell_v2 list_cells 2>/dev/null | awk '{print $2}' | grep -x cell1 >/dev/null ||
        as nova nova-manage cell_v2 create_cell --name cell1 >>"$OS_LOGS/nova-manage.log" 2>&1
    as nova nova-manage db sync >>"$OS_LOGS/nova-manage.log" 2>&1
    mark_synced nova "$v"
fi

# ---------------------------------------------------------------- services
start_service glance glance /usr/bin/glance-api --config-file=/etc/glance/glance-api.conf
start_service placement root uwsgi --ini "$OS_STATE/placement-uwsgi.ini"
# Neutron before Nova: Nova asks Neutron for every server (notes 7).
start_service neutron-api root uwsgi --ini "$OS_STATE/neutron-api-uwsgi.ini"
start_service neutron-rpc neutron /usr/bin/neutron-rpc-server "${neutron_args[@]}"
# Its ebtables is a wrapper (ebtables-wrapper: ebtables-nft cannot delete the
# agent's --among-src rules, which otherwise wedges the agent on the first port
# updated twice, a rebooted server's). The agent runs ebtables in its privsep
# daemon, which sudo starts with sudo's own PATH: so the wrapper goes where that
# PATH looks first, /usr/local/sbin. It changes nothing but those deletes.
install -m 755 "$here/ebtables-wrapper" /usr/local/sbin/ebtables
start_service neutron-linuxbridge root /usr/bin/neutron-linuxbridge-agent \
    --config-file=/etc/neutron/neutron.conf --config-file="$lb"
# As root: they make namespaces and veth pairs and run dnsmasq.
start_service neutron-dhcp root /usr/bin/neutron-dhcp-agent \
    --config-file=/etc/neutron/neutron.conf --config-file="$dh"
start_service neutron-l3 root /usr/bin/neutron-l3-agent \
    --config-file=/etc/neutron/neutron.conf --config-file="$l3"
start_service virtlogd root /usr/sbin/virtlogd
start_service libvirtd root /usr/sbin/libvirtd
wait_for Glance 120 curl -fsS "http://127.0.0.1:$GLANCE_PORT/"
wait_for Placement 120 curl -fsS "http://127.0.0.1:$PLACEMENT_PORT/"
wait_for Neutron 180 curl -fsS "http://127.0.0.1:$NEUTRON_PORT/"
wait_for libvirtd 60 virsh -c qemu:///system version
start_service nova-api root uwsgi --ini "$OS_STATE/nova-api-uwsgi.ini"
start_service nova-conductor nova /usr/bin/nova-conductor --config-file=/etc/nova/nova.conf
start_service nova-scheduler nova /usr/bin/nova-scheduler --config-file=/etc/nova/nova.conf
start_service nova-compute nova /usr/bin/nova-compute --config-file=/etc/nova/nova.conf \
    --config-file=/etc/nova/nova-compute.conf
start_service nova-spicehtml5proxy nova /usr/bin/nova-spicehtml5proxy --config-file=/etc/nova/nova.conf
wait_for Nova 180 curl -fsS "http://127.0.0.1:$NOVA_PORT/"

# ---------------------------------------------------------------- the demo image
image_dir=$OS_STATE/images
mkdir -p "$image_dir"
recipe=$(cat "$repo"/assets/demo-image/* | sha256sum | cut -c1-12)
demo=$image_dir/thindesk-demo-$recipe.qcow2
if [ ! -f "$demo" ]; then
    log "building the demo image (assets/demo-image/build.sh)"
    bash "$repo/assets/demo-image/build.sh" "$demo" >>"$OS_LOGS/demo-image.log" 2>&1
fi
probe_recipe=$(cat "$repo"/assets/demo-image/* "$repo"/assets/probe-image/* | sha256sum | cut -c1-12)
probe=$image_dir/thindesk-probe-$probe_recipe.qcow2
if [ ! -f "$probe" ]; then
    log "building the probe image (assets/probe-image/build.sh)"
    bash "$repo/assets/probe-image/build.sh" "$probe" >>"$OS_LOGS/demo-image.log" 2>&1
fi

# ---------------------------------------------------------------- compute host, cloud contents
log "nova: waiting for nova-compute to register, then mapping it into cell1"
wait_for nova-compute 180 /usr/bin/python3 "$here/provision.py" compute-up
as nova nova-manage cell_v2 discover_hosts >>"$OS_LOGS/nova-manage.log" 2>&1
log "images, flavors, networks, security group"
/usr/bin/python3 "$here/provision.py" contents "$demo" "$probe" "$recipe" "$probe_recipe"

write_clouds "$OS_STATE/clouds.yaml" thindesk thindesk "$THINDESK_PASS" thindesk
log "thindesk's credentials: $OS_STATE/clouds.yaml (cloud 'thindesk', mode 0600)"
log "resident memory of the services:"
report_memory >&2
log "up.sh done in $(($(date +%s) - began)) s"
