#!/usr/bin/env bash
# Starts a release server on a free loopback port with a fresh SQLite database and measures
# GET /api/users/secret, POST /api/auth/refresh (each connection on its own rotating chain) and
# POST /api/auth/login (Argon2id at the default parameters) with wrk, then the secret again during
# a login flood. Prints one line each; "errors" counts non-2xx answers and socket errors.
# Usage: scripts/bench.sh [seconds per endpoint, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SECS=${1:-10}
scripts/setup.sh >/dev/null
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
cargo leptos build --release >/dev/null 2>&1
WORK=$(mktemp -d /tmp/baton-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# The per-address limits are off: wrk is one address, and this measures throughput, not refusals.
BATON_DATA_DIR="$WORK" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=baton \
  RATE_LIMIT_SIGNUP=0 RATE_LIMIT_LOGIN=0 RATE_LIMIT_REFRESH=0 RUST_LOG=warn target/release/server >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

CONNS=4
tokens=()
for i in $(seq 0 $((CONNS - 1))); do
  body=$(curl -fsS -H 'content-type: application/json' -d "{\"username\":\"bench$i\",\"password\":\"correct horse battery staple\"}" "$BASE/api/auth/signup")
  tokens+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshToken"])' <<<"$body")")
  [ "$i" = 0 ] && access=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])' <<<"$body")
done

# More users for the login runs (see bench/login.lua).
for i in $(seq "$CONNS" 15); do
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"username\":\"bench$i\",\"password\":\"correct horse battery staple\"}" "$BASE/api/auth/signup"
done

echo "Baton $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores, ${SECS}s per endpoint, wrk on loopback"
# wrk reads its script once per thread: real files, not pipes.
cat bench/refresh.lua bench/report.lua >"$WORK/refresh.lua"
cat bench/login.lua bench/report.lua >"$WORK/login.lua"
BATON_BENCH_NAME="GET /api/users/secret" wrk -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $access" -s bench/report.lua "$BASE/api/users/secret" | tail -1
BATON_BENCH_NAME="POST /api/auth/refresh" BATON_TOKENS=$(IFS=,; echo "${tokens[*]}") \
  wrk -t$CONNS -c$CONNS -d"${SECS}s" -s "$WORK/refresh.lua" "$BASE" | tail -1
BATON_BENCH_NAME="POST /api/auth/login" wrk -t2 -c4 -d"${SECS}s" -s "$WORK/login.lua" "$BASE" | tail -1
# Password hashing runs off the executor with bounded concurrency: a login flood must not starve the rest.
BATON_BENCH_NAME="(login flood, 16 conns)" wrk -t1 -c16 -d"${SECS}s" -s "$WORK/login.lua" "$BASE" | tail -1 &
FLOOD=$!
sleep 1
BATON_BENCH_NAME="GET secret during the flood" wrk -t2 -c32 -d"$((SECS - 2))s" -H "Authorization: Bearer $access" -s bench/report.lua "$BASE/api/users/secret" | tail -1
wait $FLOOD

# The browser's first load: the bundle's size on the wire and the time to an interactive /login.
node bench/first-load.cjs "$BASE"
