#!/usr/bin/env bash
# The client's footprint, measured on the real binary under X: time to the first
# frame, idle CPU on every screen, memory (RSS) on every screen, and remote-viewer's
# RSS showing the demo desktop on the same X screen, for comparison.
#
# Method: each screen is reached with a fresh client (registering, approving,
# rejecting through the server's CLI; logging in with xdotool), left alone for
# SETTLE s, then its utime+stime (/proc/PID/stat, fields 14 and 15, in clock ticks)
# is read before and after IDLE s of idleness: CPU % = ticks / CLK_TCK / IDLE. RSS is
# VmRSS of /proc/PID/status at the end of that window. The first frame is the client's
# own log line (from `main`) and the wall clock from `exec` to that line.
#
# Needs Xvfb (or any X display), xdotool, curl, a built client (release by default)
# and server, and remote-viewer for the comparison.
# Usage: client/scripts/measure.sh [idle-seconds] [release|debug]
set -euo pipefail
cd "$(dirname "$0")/../.."
idle=${1:-30}
profile=${2:-release}
target=${CARGO_TARGET_DIR:-target}
client=$target/$profile/thindesk
server=$target/release/thindesk-server
[ -x "$server" ] || server=$target/debug/thindesk-server
export DISPLAY=${DISPLAY:-:5}
if ! xdpyinfo >/dev/null 2>&1; then
    Xvfb "$DISPLAY" -screen 0 1366x768x24 >/dev/null 2>&1 &
    xvfb_pid=$!
    sleep 1
fi
port=5099
api=http://127.0.0.1:$port/api/v1.0
log=$(mktemp)
"$server" demo --listen 127.0.0.1:$port >"$log" 2>/dev/null &
server_pid=$!
client_pid=
viewer_pid=
cleanup() {
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
    [ -n "$viewer_pid" ] && kill "$viewer_pid" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
    [ -n "${xvfb_pid:-}" ] && kill "$xvfb_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 120); do grep -q "(data in" "$log" && break; sleep 0.5; done
data_dir=$(sed -n 's/.*(data in \(.*\), removed on exit).*/\1/p' "$log")
student_password=$(sed -n 's/.*student: *student \/ \([^ ]*\).*/\1/p' "$log")
# The client speaks HTTPS only, to the certificate it pins: pinned here as a deployed
# terminal has it (unpinned, every screen would be the first-contact one).
fingerprint=$("$server" --data-dir "$data_dir" tls show | sed -n 's/^fingerprint (SHA-256) *//p')
config=$(mktemp --suffix=.toml)
printf 'server_fingerprint = "%s"\n' "$fingerprint" >"$config"
admin() { "$server" --data-dir "$data_dir" "$@" >/dev/null 2>&1; }
register() { # mac seat
    curl -s -H 'Content-Type: application/json' \
        -d "{\"place\":\"b101\",\"seat_number\":\"$2\",\"mac_address\":\"$1\"}" "$api/terminals/registration" >/dev/null
}
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# idle PID NAME: CPU and RSS of PID, left alone for $idle s.
idle() {
    local before after
    before=$(cpu "$1")
    sleep "$idle"
    after=$(cpu "$1")
    printf '| %s | %s ticks = %s %% | %s MB |\n' "$2" "$((after - before))" \
        "$(awk -v t=$((after - before)) -v s="$idle" -v hz="$ticks" 'BEGIN{printf "%.2f", 100*t/hz/s}')" \
        "$(( $(rss "$1") / 1024 ))"
}
start() { # mac [server]
    clog=$(mktemp)
    start_ns=$(date +%s%N)
    THINDESK_LOG=info "$client" --server "${2:-http://127.0.0.1:$port}" --mac "$1" --lang en --size 1024x700 \
        --config "$config" 2>"$clog" &
    client_pid=$!
    until grep -q "first frame" "$clog"; do sleep 0.01; done
    first_wall=$(( ($(date +%s%N) - start_ns) / 1000000 ))
    first_main=$(sed 's/\x1b\[[0-9;]*m//g' "$clog" | sed -n 's/.*first frame elapsed_ms=\([0-9]*\).*/\1/p' | head -1)
    # The window has the keyboard, as a terminal's only window does (a focused text
    # field's cursor is then drawn too).
    sleep 1
    xdotool windowfocus --sync "$(xdotool search --name '^thindesk$' | head -1)" 2>/dev/null || true
    sleep "${SETTLE:-3}"
}
stop() { kill "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; client_pid=; }
log_in() { # user password
    xdotool windowfocus --sync "$(xdotool search --name '^thindesk$' | head -1)"; sleep 0.5
    xdotool mousemove 512 362 click 1; sleep 0.3
    xdotool type --delay 20 "$1"; xdotool key Tab; xdotool type --delay 20 "$2"; xdotool key Return
    sleep "${SETTLE:-3}"
}

echo "| screen | idle CPU over ${idle} s | RSS |"
echo "| --- | --- | --- |"
start 02:00:00:00:99:01 http://127.0.0.1:9
idle "$client_pid" "server unreachable (counting down)"
stop
start 02:00:00:00:99:02
idle "$client_pid" "registration"
stop
admin setting set terminal_registration_mode approval
register 02:00:00:00:99:03 93
start 02:00:00:00:99:03
idle "$client_pid" "waiting for approval (polls every 3 s)"
stop
register 02:00:00:00:99:04 94
admin terminal reject 02:00:00:00:99:04
start 02:00:00:00:99:04
idle "$client_pid" "rejected"
stop
register 02:00:00:00:99:05 95
admin terminal approve 02:00:00:00:99:05
start 02:00:00:00:99:05
echo "first frame: ${first_wall} ms wall clock from exec, ${first_main} ms from main" >&2
idle "$client_pid" "login"
log_in student "$student_password"
idle "$client_pid" "desktop list (refreshes every 5 s)"
stop

# remote-viewer on the demo desktop, on the same X screen: its RSS beside the client's.
desktop=$(curl -s -u "student:$student_password" "$api/users/me/desktops")
spice_port=$(printf '%s' "$desktop" | sed -n 's/.*"type":"spice","ip":"[^"]*","port":"\([0-9]*\)".*/\1/p')
ticket=$(printf '%s' "$desktop" | sed -n 's/.*"type":"spice"[^}]*"password":"\([^"]*\)".*/\1/p')
echo "remote-viewer: SPICE port ${spice_port:-none}, ticket ${ticket:+given}" >&2
if command -v remote-viewer >/dev/null && [ -n "$spice_port" ]; then
    printf '[virt-viewer]\ntype=spice\nhost=127.0.0.1\nport=%s\npassword=%s\n' "$spice_port" "$ticket" |
        remote-viewer - >/dev/null 2>&1 &
    viewer_pid=$!
    sleep "${SETTLE:-3}"; sleep 5
    idle "$viewer_pid" "remote-viewer showing the demo desktop"
fi
