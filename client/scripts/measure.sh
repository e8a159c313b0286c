#!/usr/bin/env bash
# Start-up time, idle CPU and memory of the release client, idle on the login screen.
# Needs an X display (e.g. `Xvfb :5 &` and DISPLAY=:5) and a built release workspace.
# Usage: client/scripts/measure.sh [seconds-idle]
set -euo pipefail
idle=${1:-30}
target=${CARGO_TARGET_DIR:-target}/release
server=$target/thindesk-server
client=$target/thindesk
port=5099
log=$(mktemp)
"$server" demo --listen 127.0.0.1:$port >"$log" 2>/dev/null &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; kill ${client_pid:-} 2>/dev/null || true' EXIT
sleep 2
data_dir=$(sed -n 's/.*(data in \(.*\), removed on exit).*/\1/p' "$log")
mac=02:00:00:00:99:01
curl -s -H 'Content-Type: application/json' \
    -d "{\"place\":\"b101\",\"seat_number\":\"99\",\"mac_address\":\"$mac\"}" \
    http://127.0.0.1:$port/api/v1.0/terminals/registration >/dev/null
"$server" --data-dir "$data_dir" terminal approve $mac >/dev/null

clog=$(mktemp)
start=$(date +%s%N)
THINDESK_LOG=info "$client" --server http://127.0.0.1:$port --mac $mac --lang en 2>"$clog" &
client_pid=$!
until grep -q "first frame" "$clog"; do sleep 0.01; done
end=$(date +%s%N)
echo "first frame (wall clock, from exec): $(( (end - start) / 1000000 )) ms"
echo "first frame (in process, from main): $(sed 's/\x1b\[[0-9;]*m//g' "$clog" | sed -n 's/.*first frame elapsed_ms=\([0-9]*\).*/\1/p' | head -1) ms"
sleep 3   # the terminal lookup and login screen settle
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$client_pid/stat"; }
before=$(cpu)
sleep "$idle"
after=$(cpu)
echo "idle CPU over ${idle} s on the login screen: $(( after - before )) ticks of 1/$ticks s" \
     "= $(awk -v t=$((after - before)) -v s="$idle" -v hz="$ticks" 'BEGIN{printf "%.2f", 100*t/hz/s}') %"
grep -E 'VmRSS|VmHWM' "/proc/$client_pid/status"
