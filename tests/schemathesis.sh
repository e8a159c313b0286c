#!/usr/bin/env bash
# Runs schemathesis against the real thindesk-server binary, over the OpenAPI document
# the server serves (GET /api/v1.0/openapi.json): no server error, and every answer
# (status, content type, headers, body, `Allow` of a 405) as the document says. The
# checks are in tests/schemathesis.toml.
#
# The server runs on a temporary data directory, on a free loopback port, without a
# hypervisor, with an administrator and a student made by the binary's own CLI.
# schemathesis is installed once into a venv under the cargo target directory; when
# it is there, nothing is downloaded.
#
#   bash tests/schemathesis.sh                       # from the repository's root
#   SCHEMATHESIS_MAX_EXAMPLES=200 bash tests/schemathesis.sh   # a longer run
#   SCHEMATHESIS_SEED=7 bash tests/schemathesis.sh             # other inputs
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-$PWD/target}
venv=$target/schemathesis-venv
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
seed=${SCHEMATHESIS_SEED:-1}

# ----- schemathesis, pinned -----------------------------------------------------------
if [ "$("$venv/bin/st" --version 2>/dev/null || true)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    python=python3
    [ -x /usr/bin/python3 ] && python=/usr/bin/python3
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# ----- the server ---------------------------------------------------------------------
cargo build --quiet --locked -p thindesk-server
server_bin=$target/debug/thindesk-server

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A configuration file of our own, so that no /etc/thindesk/server.toml steps in, and
# neither the server nor the CLI looks for a hypervisor.
printf 'hypervisor = "none"\n' >"$work/server.toml"
server() {
    "$server_bin" --config "$work/server.toml" --data-dir "$work/data" "$@"
}
admin_password=schemathesis-admin-password
echo "$admin_password" | server user add teacher --admin >/dev/null
echo student-password | server user add student >/dev/null
server place add b101 --address "one floor" >/dev/null

# Not through `server`: a function in the background is a subshell, and `$!` would be
# that subshell's, not the server's.
"$server_bin" --config "$work/server.toml" --data-dir "$work/data" serve --listen 127.0.0.1:0 --hypervisor none \
    >"$work/server.log" 2>&1 &
server_pid=$!
address=
for _ in $(seq 100); do
    address=$(grep -o 'address=127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n1 | cut -d= -f2 || true)
    [ -n "$address" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
    sleep 0.1
done
[ -n "$address" ] || { cat "$work/server.log"; echo "the server did not say where it listens" >&2; exit 1; }
base=http://$address

# schemathesis authenticates with a Basic header holding the administrator's token as
# the user name (`Basic base64(TOKEN:)`, a form the server reads): changing the password
# through reset_password, as schemathesis will, revokes every token but that one, so
# the rest of the run stays authenticated. Secrets travel in the environment, never in
# arguments (tests/schemathesis.toml reads the header from it).
token=$(BASE=$base PASSWORD=$admin_password "$venv/bin/python" - <<'EOF'
import base64, json, os, urllib.request
request = urllib.request.Request(f"{os.environ['BASE']}/api/v1.0/token")
pair = f"teacher:{os.environ['PASSWORD']}".encode()
request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
print(json.load(urllib.request.urlopen(request))["data"]["token"]["id"])
EOF
)
THINDESK_SCHEMATHESIS_AUTHORIZATION="Basic $(printf '%s:' "$token" | base64 -w0)"
export THINDESK_SCHEMATHESIS_AUTHORIZATION

# ----- the run ------------------------------------------------------------------------
started=$(date +%s)
status=0
config=$PWD/tests/schemathesis.toml
# From the temporary directory, so that schemathesis leaves nothing in the repository.
(cd "$work" && "$venv/bin/st" --config-file "$config" run "$base/api/v1.0/openapi.json" \
    --url "$base" \
    --phases examples,coverage,fuzzing \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 30 \
    --generation-database none \
    --no-color) | tee "$work/schemathesis.log" ||
    status=$?
echo "schemathesis took $(($(date +%s) - started)) s"
if [ "$status" != 0 ]; then
    echo "== the server's log" >&2
    tail -n 50 "$work/server.log" >&2
fi
# A plain closing line: how many cases passed and how many failures were found.
passed=$(grep -Eo '[0-9]+ passed' "$work/schemathesis.log" | tail -n1 | cut -d' ' -f1 || true)
failed=$(grep -Eo 'found [0-9]+ unique failure' "$work/schemathesis.log" | tail -n1 | cut -d' ' -f2 || true)
[ "$status" = 0 ] || failed=${failed:-1}
echo "schemathesis: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
