#!/usr/bin/env bash
# Screenshots of every screen, in English and Chinese, of the real binary under Xvfb.
# Needs Xvfb, xdotool, imagemagick, curl and a built workspace (server and client).
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
sleep 2
data_dir=$(sed -n 's/.*(data in \(.*\), removed on exit).*/\1/p' "$log")
student_password=$(sed -n 's/.*student: *student \/ \(.*\)$/\1/p' "$log")
admin() { "$bin/thindesk-server" --data-dir "$data_dir" "$@" >/dev/null 2>&1; }
register() { # mac seat
    curl -s -H 'Content-Type: application/json' \
        -d "{\"place\":\"b101\",\"seat_number\":\"$2\",\"mac_address\":\"$1\"}" "$api/terminals/registration" >/dev/null
}

start() { # lang mac [server]
    "$bin/thindesk" --lang "$1" --mac "$2" --server "${3:-http://127.0.0.1:$port}" --size 960x680 \
        --config /dev/null 2>/dev/null &
    client_pid=$!
    sleep "${SETTLE:-3}"
}
stop() { kill "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; client_pid=; }
shot() { # name
    sleep 1
    import -window root -crop 960x680+0+0 +repage -colors 64 "$out/$1.png"
}
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.5; }
type_text() { xdotool type --delay 20 "$1"; sleep 0.3; }

n=0
for lang in en zh; do
    n=$((n + 1))
    # Registration: a MAC the server does not know.
    start "$lang" "02:00:00:00:0$n:01"
    shot "register-$lang"
    stop
    # Waiting: registered, not yet approved.
    register "02:00:00:00:0$n:02" "2$n"
    start "$lang" "02:00:00:00:0$n:02"
    shot "waiting-$lang"
    stop
    # Rejected.
    register "02:00:00:00:0$n:03" "3$n"
    admin terminal reject "02:00:00:00:0$n:03"
    start "$lang" "02:00:00:00:0$n:03"
    shot "rejected-$lang"
    stop
    # Unreachable server.
    start "$lang" "02:00:00:00:0$n:04" "http://127.0.0.1:9"
    shot "unreachable-$lang"
    stop
    # Login, wrong password, desktops, an action the server refuses, change password.
    register "02:00:00:00:0$n:05" "5$n"
    admin terminal approve "02:00:00:00:0$n:05"
    start "$lang" "02:00:00:00:0$n:05"
    shot "login-$lang"
    eval "$(cat client/scripts/coordinates-$lang.sh)"
    click $USER_FIELD; type_text student
    click $PASSWORD_FIELD; type_text wrong-password; xdotool key Return
    shot "login-wrong-password-$lang"
    click $PASSWORD_FIELD; type_text "$student_password"; xdotool key Return
    sleep 2
    shot "desktops-$lang"
    click $START_BUTTON
    sleep 1
    shot "desktops-action-refused-$lang"
    click $CHANGE_PASSWORD_BUTTON
    shot "change-password-$lang"
    stop
done
echo "screenshots in $out"
