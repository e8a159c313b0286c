#!/usr/bin/env bash
# Screenshots of every screen, in English and Chinese, of the real binary under Xvfb.
# Needs Xvfb, xdotool, imagemagick, curl and a built workspace: the server, the client
# and its example `screenshot_server` (desktops on the compute test double), e.g.
#   cargo build --release -p thindesk-server -p thindesk-client --examples
# Usage: client/scripts/screenshots.sh [debug|release]   (writes client/screenshots/)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-debug}
bin=${CARGO_TARGET_DIR:-target}/$profile
out=client/screenshots
mkdir -p "$out"
export DISPLAY=${DISPLAY:-:7}
if ! xdpyinfo >/dev/null 2>&1; then
    Xvfb "$DISPLAY" -screen 0 1280x800x24 >/dev/null 2>&1 &
    xvfb_pid=$!
    sleep 1
fi
port=5088
api=http://127.0.0.1:$port/api/v1.0
log=$(mktemp)
"$bin/thindesk-server" demo --listen 127.0.0.1:$port >"$log" 2>/dev/null &
server_pid=$!
client_pid=
cleanup() {
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
    [ -n "${xvfb_pid:-}" ] && kill "$xvfb_pid" 2>/dev/null || true
}
trap cleanup EXIT
# The demo starts its machine before it says where its data is.
for _ in $(seq 240); do
    grep -q 'removed on exit' "$log" && break
    sleep 0.5
done
data_dir=$(sed -n 's/.*(data in \(.*\), removed on exit).*/\1/p' "$log")
student_password=$(sed -n 's/.*student: *student \/ \(.*\)$/\1/p' "$log")
admin() { "$bin/thindesk-server" --data-dir "$data_dir" "$@" >/dev/null 2>&1; }
# The client pins the server's certificate: a deployed terminal has it in its settings.
fingerprint=$("$bin/thindesk-server" --data-dir "$data_dir" tls show | sed -n 's/^fingerprint (SHA-256) *//p')
config_dir=$(mktemp -d)
printf 'server_fingerprint = "%s"\n' "$fingerprint" >"$config_dir/pinned.toml"
printf 'server_fingerprint = "%s"\n' "$(echo "$fingerprint" | tr '0-9A-F' 'A-F0-9')" >"$config_dir/other.toml"
register() { # mac seat
    curl -s -H 'Content-Type: application/json' \
        -d "{\"place\":\"b101\",\"seat_number\":\"$2\",\"mac_address\":\"$1\"}" "$api/terminals/registration" >/dev/null
}

start() { # lang mac [server] [settings]
    "$bin/thindesk" --lang "$1" --mac "$2" --server "${3:-127.0.0.1:$port}" --size 960x680 \
        --config "${4:-$config_dir/pinned.toml}" 2>/dev/null &
    client_pid=$!
    sleep "${SETTLE:-3}"
}
stop() { kill "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; client_pid=; }
shot() { # name
    sleep 1
    import -window root -crop 960x680+0+0 +repage +dither -colors 64 "$out/$1.png"
}
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.5; }
type_text() { xdotool type --delay 20 "$1"; sleep 0.3; }

# Every state is reached in English, then shot in both languages with the switch at
# the right end of the top bar (which is itself what is being shown: switchable on
# every screen). Coordinates are those of the 960x680 window at the screen's origin.
both() { shot "$1-en"; click 930 16; shot "$1-zh"; click 930 16; }
focus() { xdotool windowfocus --sync "$(xdotool search --name '^thindesk$' | head -1)"; }

start en 02:00:00:00:00:01
both register
click 279 366                      # Register with no seat: the server's field error
both register-field-error
click 821 16                       # Settings
both settings
stop

register 02:00:00:00:00:02 02
start en 02:00:00:00:00:02
both waiting
stop

register 02:00:00:00:00:03 03
admin terminal reject 02:00:00:00:00:03
start en 02:00:00:00:00:03
both rejected
stop

start en 02:00:00:00:00:04 127.0.0.1:9
both unreachable
stop

# The certificate: first contact (nothing pinned), and another than the pinned one.
cp /dev/null "$config_dir/first.toml"
start en 02:00:00:00:00:04 "127.0.0.1:$port" "$config_dir/first.toml"
both first-contact
stop
start en 02:00:00:00:00:04 "127.0.0.1:$port" "$config_dir/other.toml"
both certificate-changed
stop

register 02:00:00:00:00:05 05
admin terminal approve 02:00:00:00:00:05
start en 02:00:00:00:00:05
focus
both login
click 480 202; type_text student
click 480 264; type_text wrong-password; xdotool key Return
both login-wrong-password
click 480 264; type_text "$student_password"; xdotool key Return
sleep 2
both desktops
click 136 140                      # Start: this demo server has no hypervisor
sleep 1
both desktops-action-refused
click 617 16                       # Change password
shot change-password-en
click 394 421                      # Cancel
click 930 16
click 679 16                       # 修改密码
shot change-password-zh
stop

# Throttled: the administrator's account after many wrong passwords.
for _ in $(seq 1 20); do
    wait=$(curl -s -u admin:wrong "$api/token" | sed -n 's/.*"retry_after":\([0-9]*\).*/\1/p')
    [ -n "$wait" ] && [ "$wait" -ge 16 ] && break
    [ -n "$wait" ] && sleep "$wait"
done
start en 02:00:00:00:00:05
focus
click 480 202; type_text admin
click 480 264; type_text not-it-either; xdotool key Return
both login-throttled
stop

# Running desktops need a hypervisor; this server runs them on the test double.
"$bin/examples/screenshot_server" 5089 >"$config_dir/double.log" 2>&1 &
double_pid=$!
trap 'cleanup; kill $double_pid 2>/dev/null || true' EXIT
sleep 2
curl -s -H 'Content-Type: application/json' \
    -d '{"place":"b101","seat_number":"08","mac_address":"02:00:00:00:00:08"}' \
    http://127.0.0.1:5089/api/v1.0/terminals/registration >/dev/null
viewer_dir=$(mktemp -d)
# A stand-in viewer that stays open until it is ended.
printf '#!/bin/sh\ncat >/dev/null\nexec sleep 600\n' >"$viewer_dir/viewer"
chmod +x "$viewer_dir/viewer"
double_fingerprint=$(sed -n 's/^fingerprint //p' "$config_dir/double.log")
printf 'server_fingerprint = "%s"\n[viewers]\nspice = "%s"\n' "$double_fingerprint" "$viewer_dir/viewer" \
    >"$viewer_dir/client.toml"
"$bin/thindesk" --lang en --mac 02:00:00:00:00:08 --server 127.0.0.1:5089 --size 960x680 \
    --config "$viewer_dir/client.toml" 2>/dev/null &
client_pid=$!
sleep "${SETTLE:-3}"
focus
click 480 202; type_text student
click 480 264; type_text student-password; xdotool key Return
sleep 2
click 136 140                      # Start the first desktop
sleep 1
both action-done
click 60 166                       # Connect
sleep 1
both session-open
kill "$(ps --ppid "$client_pid" -o pid= | head -1)"   # the viewer closes
sleep 1
both session-ended
click 237 166                      # Shut down: asks first
shot confirm-shutdown-en
click 415 371                      # Cancel
click 930 16
click 167 166                      # 关机
shot confirm-shutdown-zh
stop
echo "screenshots in $out"
