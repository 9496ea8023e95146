#!/usr/bin/env bash
# A bounded schemathesis run against the real server: every check of schemathesis on every
# operation of our own /openapi.json (examples, coverage, fuzzing and stateful phases), with a
# token of the demo client. Fails on any failure schemathesis reports. Called by .ci/run.
#
# Needs python3 with venv and pip (PyPI); installs the pinned schemathesis into a venv under
# target/ (kept between local runs). The server is the debug build with the embedded sandbox
# and a fresh SQLite database in a temporary directory, listening on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
# Time budget of the schemathesis run (seconds): fuzzing and stateful testing repeat until it is
# spent. With the install (~12 s on a clean machine), the build check and the start, the script
# stays under 2 minutes.
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-80}

venv="$repo/target/schemathesis-venv"
if [ "$("$venv/bin/st" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n1)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian/Ubuntu ship venv separately.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      echo "python3 -m venv failed: install python3-venv" >&2
      exit 1
    fi
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building vorgang-server"
cargo build -p vorgang-server --locked --quiet

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

# No settings from the caller's environment: embedded sandbox, SQLite in $work, a free port.
(
  cd "$work"
  for name in $(env | grep -o '^VORGANG_[A-Za-z0-9_]*' || true); do unset "$name"; done
  export VORGANG_LISTEN=127.0.0.1:0
  # One client sending thousands of requests a minute: with the default quota (600/min) most
  # POSTs would be answered 429 and the import path would go untested. A quota this high keeps
  # the limit on, so its RateLimit-* headers are still checked against the document.
  export VORGANG_LIMITS__IMPORTS_PER_MINUTE=1000000
  exec "$repo/target/debug/vorgang-server" serve >"$work/stdout" 2>"$work/server.log"
) &
server_pid=$!

# The bound address is logged once the server listens ("vorgang-server listening").
address=
for _ in $(seq 1 600); do
  address=$(grep -o '"message":"vorgang-server listening","address":"[^"]*"' "$work/server.log" 2>/dev/null \
    | sed 's/.*"address":"\([^"]*\)"/\1/' || true)
  [ -n "$address" ] && [ -s "$work/stdout" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { tail -n 20 "$work/server.log" >&2; echo "the server did not start" >&2; exit 1; }
base="http://$address"
echo "== server at $base"

# The demo client's credentials (the JSON line on the server's stdout) and an access token;
# .ci/schemathesis.toml sends them.
read -r ST_CLIENT_BASIC ST_ACCESS_TOKEN < <("$venv/bin/python" - "$base" "$work/stdout" <<'EOF'
import base64, json, sys, urllib.parse, urllib.request
base, creds = sys.argv[1], json.loads(open(sys.argv[2]).readline())
basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
request = urllib.request.Request(
    base + "/oauth2/token",
    data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
    headers={"Authorization": "Basic " + basic},
)
print(basic, json.load(urllib.request.urlopen(request))["access_token"])
EOF
)
[ -n "${ST_ACCESS_TOKEN:-}" ] || { echo "no access token" >&2; exit 1; }
export ST_CLIENT_BASIC ST_ACCESS_TOKEN

started=$(date +%s)
status=0
(
  cd "$work" # schemathesis keeps its example database in the working directory
  "$venv/bin/st" --config-file "$repo/.ci/schemathesis.toml" run "$base/openapi.json" \
    --checks all \
    --max-time "$MAX_TIME" \
    --workers 2 \
    --report junit --report-dir "$repo/target/schemathesis"
) || status=$?
elapsed=$(( $(date +%s) - started ))

# How many requests the server answered, from its own metrics.
requests=$("$venv/bin/python" - "$base" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
print(sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith("http_requests_total{")))
EOF
)
echo "== schemathesis: exit $status, ${elapsed}s, $requests requests answered by the server"
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server died during the run" >&2
  tail -n 50 "$work/server.log" >&2
  exit 1
fi
if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "== server errors logged during the run:"
  grep '"level":"ERROR"' "$work/server.log" | tail -n 20
fi
exit "$status"
