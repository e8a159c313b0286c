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
school='school_name = "Riverside Middle School"'
printf '%s\nserver_fingerprint = "%s"\n' "$school" "$fingerprint" >"$config_dir/pinned.toml"
printf '%s\nserver_fingerprint = "%s"\n' "$school" "$(echo "$fingerprint" | tr '0-9A-F' 'A-F0-9')" \
    >"$config_dir/other.toml"
register() { # mac seat
    curl -s -H 'Content-Type: application/json' \
        -d "{\"place\":\"b101\",\"seat_number\":\"$2\",\"mac_address\":\"$1\"}" "$api/terminals/registration" >/dev/null
}

start() { # lang mac [server] [config]
    "$bin/thindesk" --lang "$1" --mac "$2" --server "${3:-127.0.0.1:$port}" --size 1024x700 \
        --config "${4:-$config_dir/pinned.toml}" 2>/dev/null &
    client_pid=$!
    sleep "${SETTLE:-3}"
}
stop() { kill "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; client_pid=; }
shot() { # name
    sleep 1
    import -window root -crop 1024x700+0+0 +repage +dither -colors 128 "$out/$1.png"
}
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.5; }
type_text() { xdotool type --delay 40 "$1"; sleep 0.3; }

# Every state is reached in English, then shot in both languages with the switch at
# the right end of the top bar (which is itself what is being shown: switchable on
# every screen). Coordinates are those of the 1024x700 window at the screen's origin
# (no window manager): the language switch at the right end of the top bar, the
# login form's two fields, the first desktop tile's buttons.
lang_x=985 bar_y=20
both() { shot "$1-en"; click $lang_x $bar_y; shot "$1-zh"; click $lang_x $bar_y; }
focus() { xdotool windowfocus --sync "$(xdotool search --name '^thindesk$' | head -1)"; sleep 0.5; }
# The login form: a click in the user name field (the keyboard starts there, but a
# click on the language switch takes it), Tab to the password, Enter.
log_in() { focus; click 512 362; type_text "$1"; xdotool key Tab; type_text "$2"; xdotool key Return; sleep 1; }
start en 02:00:00:00:00:01
both register
focus
xdotool key Return                 # Register with no seat (the seat field has the keyboard)
sleep 1
both register-field-error
click 858 $bar_y                   # Settings
both settings
stop

admin setting set terminal_registration_mode approval   # the demo approves every terminal
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
printf '%s\n' "$school" >"$config_dir/first.toml"
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
log_in student wrong-password
both login-wrong-password
stop

# Throttled: the administrator's account after many wrong passwords.
for _ in $(seq 1 20); do
    wait=$(curl -s -u admin:wrong "$api/token" | sed -n 's/.*"retry_after":\([0-9]*\).*/\1/p')
    [ -n "$wait" ] && [ "$wait" -ge 16 ] && break
    [ -n "$wait" ] && sleep "$wait"
done
start en 02:00:00:00:00:05
log_in admin not-it-either
both login-throttled
stop

# Desktops need a hypervisor; this server runs them on the test double (a catalogue
# image "Debian 12" and flavor "medium" give the tiles an OS and a size).
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
printf 'school_name = "Riverside Middle School"\nserver_fingerprint = "%s"\n[viewers]\nspice = "%s"\n' \
    "$double_fingerprint" "$viewer_dir/viewer" >"$viewer_dir/client.toml"
config=$viewer_dir/client.toml
start en 02:00:00:00:00:08 127.0.0.1:5089 "$config"
log_in student student-password
sleep 1
both desktops
click 87 456                       # Start the first desktop: "Starting…" while it boots
sleep 1
both action-done
sleep 20                           # its guest's boot time (boot_wait_secs) passes
click 219 390                      # Connect
sleep 1
both session-open
kill "$(ps --ppid "$client_pid" -o pid= | head -1)"   # the viewer closes
sleep 1
both session-ended
click 338 456                      # Shut down: asks first
shot confirm-shutdown-en
xdotool key Escape; sleep 0.5
click $lang_x $bar_y
click 338 456                      # 关机 (the tile's buttons are where they were)
shot confirm-shutdown-zh
xdotool key Escape; sleep 0.5
stop
# The password dialog in each language, from the keyboard: it starts on the first
# tile's main button (Start), and Shift+Tab goes back through Refresh and the top bar
# (language, Settings, Log out) to Change password.
for lang in en zh; do
    start $lang 02:00:00:00:00:08 127.0.0.1:5089 "$config"
    log_in student student-password
    sleep 1
    for _ in 1 2 3 4 5; do xdotool key shift+Tab; sleep 0.2; done
    xdotool key Return
    shot change-password-$lang
    stop
done
echo "screenshots in $out"
