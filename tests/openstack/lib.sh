# Shared by up.sh and down.sh: where the single-node cloud keeps its state, logs and
# processes, and how a service is started, found and stopped. Sourced, not run.

# Everything up.sh makes lives under these; down.sh stops the processes, keeps the data.
OS_STATE=${THINDESK_OS_STATE:-/var/lib/thindesk-openstack}
OS_LOGS=${THINDESK_OS_LOGS:-/var/log/thindesk-openstack}
OS_RUN=$OS_STATE/run

# Ports. Keystone moves off 5000, thindesk's own default (openstack-notes item 4).
KEYSTONE_PORT=${THINDESK_OS_KEYSTONE_PORT:-35357}
GLANCE_PORT=9292
PLACEMENT_PORT=8778
NOVA_PORT=8774
NEUTRON_PORT=9696
SPICE_PROXY_PORT=6082

# The services up.sh starts, in start order; down.sh stops them in reverse.
OS_SERVICES=(mariadb memcached epmd rabbitmq keystone glance placement neutron-api
    neutron-rpc neutron-linuxbridge neutron-dhcp neutron-l3 virtlogd libvirtd nova-api nova-conductor
    nova-scheduler nova-compute nova-spicehtml5proxy)

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The pid recorded for a service when that process still runs, else nothing.
service_pid() {
    local pidfile=$OS_RUN/$1.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && alive "$pid"; then
        echo "$pid"
    fi
}

# start_service NAME USER COMMAND...: runs COMMAND as USER in a session of its own
# (so that down.sh stops it and its children by process group), its output appended
# to $OS_LOGS/NAME.log, unless the process recorded for NAME still runs.
start_service() {
    local name=$1 user=$2 pid
    shift 2
    pid=$(service_pid "$name")
    if [ -n "$pid" ]; then
        log "$name: already running (pid $pid)"
        return 0
    fi
    local -a as_user=()
    if [ "$user" != root ]; then
        as_user=(setpriv --reuid "$user" --regid "$user" --init-groups --inh-caps=-all)
    fi
    echo "=== $(date -u +%FT%TZ) starting: $*" >>"$OS_LOGS/$name.log"
    setsid "${as_user[@]}" "$@" </dev/null >>"$OS_LOGS/$name.log" 2>&1 &
    echo $! >"$OS_RUN/$name.pid"
    log "$name: started (pid $!, log $OS_LOGS/$name.log)"
}

# stop_services NAME...: TERM to each service's process group (in the order given),
# then waits for all of them together; KILL to whatever still runs after 30 s.
stop_services() {
    local name pid i
    local -A pids=()
    for name in "$@"; do
        pid=$(service_pid "$name")
        rm -f "$OS_RUN/$name.pid"
        [ -n "$pid" ] || continue
        pids[$name]=$pid
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 60); do
        for name in "${!pids[@]}"; do
            if ! alive "${pids[$name]}"; then
                log "$name: stopped"
                unset "pids[$name]"
            fi
        done
        [ ${#pids[@]} -gt 0 ] || return 0
        sleep 0.5
    done
    for name in "${!pids[@]}"; do
        log "$name: still running after 30 s, killing"
        kill -KILL -- "-${pids[$name]}" 2>/dev/null || kill -KILL "${pids[$name]}" 2>/dev/null || true
    done
}

# alive PID: the process exists and is no zombie.
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND every half second.
wait_for() {
    local what=$1 seconds=$2 i
    shift 2
    for i in $(seq 1 $((seconds * 2))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    die "$what did not come up within $seconds s (logs in $OS_LOGS)"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Resident memory of every service's process group, in MiB, one line each and a total.
report_memory() {
    local name pid kib total=0
    for name in "${OS_SERVICES[@]}"; do
        pid=$(service_pid "$name")
        [ -n "$pid" ] || continue
        kib=$(ps -o rss= --sid "$pid" | awk '{s += $1} END {print s + 0}')
        total=$((total + kib))
        printf '  %-24s %6d MiB\n' "$name" $((kib / 1024))
    done
    printf '  %-24s %6d MiB\n' total $((total / 1024))
}
