#!/usr/bin/env bash
# Measures Baton's hot paths against references run on the same machine in the same run (ratios
# travel between machines; absolute figures do not): a bare axum hello server (bench/reference)
# and the time of one Argon2id hash (alone, and while every core hashes). With wrk on loopback, 32 connections unless said:
#   hello (and hello with Baton's security headers), SSR of /login, GET /api/users/secret, POST /api/auth/refresh (32 connections, each its
#   own rotating chain), POST /api/auth/login (32 connections), the secret during a login flood (and
#   the hello during the same flood), the secret with DPoP (a proof per call).
# The same secret, refresh and login on DRF SimpleJWT (bench/simplejwt: gunicorn, 2 workers × 2
# threads, SQLite), the Python library most teams would pick instead.
# Prints one table (req/s, p50, p99, non-2xx, ratio), the database's size and rows before and
# after, and the browser's first load (bundle bytes, time to an interactive /login).
# Each Baton row also gives the server's peak RSS during that scenario (VmHWM, reset before it).
# With --postgres: the same on PostgreSQL, then refresh on one and on two instances of one database
# (the cost of the shared per-address limit).
# With --scale N: each database again, seeded with N accounts, N live sessions and their security
# events (straight into the tables: bench/seed.py), every scenario rerun beside its figure on the
# empty database; then N sessions that ended long ago, purged at start while the secret runs.
# Usage: scripts/bench.sh [seconds per scenario, default 10] [--postgres] [--scale N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SECS=10
PG=0
SCALE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) PG=1 ;;
    --scale) SCALE=$2; shift ;;
    --scale=*) SCALE=${1#--scale=} ;;
    *) SECS=$1 ;;
  esac
  shift
done
say() { printf '\033[1m[bench %s]\033[0m %s\n' "$(date +%T)" "$*" >&2; }
scripts/setup.sh --bench >/dev/null
say "building (release)"
cargo leptos build --release --split >/dev/null 2>&1
cargo build --release -q -p bench-reference
WORK=$(mktemp -d /tmp/baton-bench.XXXXXX)
PIDS=()
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$WORK/pg" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export BATON_BENCH_OUT="$WORK/figures.tsv"
: >"$BATON_BENCH_OUT"
# wrk reads its script once per thread: real files, not pipes.
cat bench/refresh.lua bench/report.lua >"$WORK/refresh.lua"
cat bench/login.lua bench/report.lua >"$WORK/login.lua"
cat bench/dpop.lua bench/report.lua >"$WORK/dpop.lua"
cat bench/dpop_refresh.lua bench/report.lua >"$WORK/dpop_refresh.lua"
: >"$WORK/rss.tsv"
RSS_PID=""
bench() { # $1 = name; the rest: wrk's arguments. With RSS_PID set, that process's peak RSS too.
  local name=$1
  shift
  [ -n "$RSS_PID" ] && echo 5 >"/proc/$RSS_PID/clear_refs"
  BATON_BENCH_NAME="$name" wrk "$@" | tail -1
  if [ -n "$RSS_PID" ] && [ "$BATON_BENCH_OUT" != /dev/null ]; then
    printf '%s\t%s\n' "$name" "$(awk '/VmHWM/ {print $2}' "/proc/$RSS_PID/status")" >>"$WORK/rss.tsv"
  fi
}

HELLO_PORT=$(free_port)
target/release/bench-reference serve "127.0.0.1:$HELLO_PORT" &
PIDS+=($!)
read -r HASH_MS HASH_ALL_MS < <(target/release/bench-reference hash)
[ -n "$HASH_ALL_MS" ] || { echo "bench-reference hash printed no second figure" >&2; exit 1; }
echo "Baton $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores, ${SECS}s per scenario, wrk on loopback"
bench "hello (bare axum)" -t2 -c32 -d"${SECS}s" -s bench/report.lua "http://127.0.0.1:$HELLO_PORT/"
bench "hello + Baton's headers" -t2 -c32 -d"${SECS}s" -s bench/report.lua "http://127.0.0.1:$HELLO_PORT/headers"

# DRF SimpleJWT: 32 users made by its own code, then the three calls Baton is compared on.
run_simplejwt() {
  local port venv=${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup/simplejwt
  port=$(free_port)
  local base="http://127.0.0.1:$port" tokens access
  local django=(env SIMPLEJWT_DB="$WORK/simplejwt.sqlite3" DJANGO_SETTINGS_MODULE=settings PYTHONPATH="$PWD/bench/simplejwt")
  read -r tokens access < <("${django[@]}" "$venv/bin/python" bench/simplejwt/seed.py 32)
  "${django[@]}" "$venv/bin/gunicorn" -w 2 --threads 2 -k gthread -b "127.0.0.1:$port" --log-level warning wsgi:application \
    >"$WORK/simplejwt.log" 2>&1 &
  local server=$!
  PIDS+=("$server")
  for _ in $(seq 100); do curl -fsS -o /dev/null -H "Authorization: Bearer $access" "$base/api/users/secret" 2>/dev/null && break; sleep 0.1; done
  bench "secret (SimpleJWT)" -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $access" -s bench/report.lua "$base/api/users/secret"
  BATON_REFRESH_FIELD=refresh BATON_TOKENS=$tokens bench "refresh, 32 chains (SimpleJWT)" -t32 -c32 -d"${SECS}s" -s "$WORK/refresh.lua" "$base"
  bench "login, 32 connections (SimpleJWT)" -t2 -c32 -d"${SECS}s" -s "$WORK/login.lua" "$base"
  kill "$server"
  wait "$server" 2>/dev/null || true
}
say "DRF SimpleJWT (the Python reference)"
run_simplejwt

# Sizes and rows of the database: SQLite's files (with the WAL), or PostgreSQL's database.
db_size() { # $1 = database URL
  case "$1" in
    sqlite:*)
      local file=${1#sqlite://}
      python3 - "$file" <<'EOF'
import os, sqlite3, sys
f = sys.argv[1]
size = sum(os.path.getsize(f + s) for s in ("", "-wal", "-shm") if os.path.exists(f + s))
db = sqlite3.connect(f)
rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("sessions", "refresh_tokens", "security_events")}
print(f"{size / 1e6:.2f} MB (with WAL), rows {rows}")
EOF
      ;;
    *)
      local q="SELECT pg_size_pretty(pg_database_size(current_database())) || ', rows sessions ' || (SELECT COUNT(*) FROM sessions) || ', refresh_tokens ' || (SELECT COUNT(*) FROM refresh_tokens) || ', security_events ' || (SELECT COUNT(*) FROM security_events)"
      psql -qtA "$1" -c "$q"
      ;;
  esac
}

start_server() { # $1 = label, $2 = DATABASE_URL, $3 = port, then VAR=value settings; the pid in SERVER_PID
  local label=$1 url=$2 port=$3
  shift 3
  env DATABASE_URL="$url" BATON_DATA_DIR="$WORK/data-$label" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site \
    LEPTOS_OUTPUT_NAME=baton RATE_LIMIT_SIGNUP=0 RATE_LIMIT_LOGIN=0 RATE_LIMIT_REFRESH=0 RUST_LOG=warn "$@" \
    target/release/server >"$WORK/server-$label.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 600); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}

sign_up() { # $1 = base URL, $2 = name prefix, $3 = count: prints the refresh tokens, comma-separated
  local tokens=() body
  for i in $(seq 1 "$3"); do
    body=$(curl -fsS -H 'content-type: application/json' -d "{\"username\":\"$2$i\",\"password\":\"correct horse battery staple\"}" "$1/api/auth/signup")
    tokens+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshToken"])' <<<"$body")")
  done
  (IFS=,; echo "${tokens[*]}")
}

# Several instances on one PostgreSQL: refresh with the per-address limit off, with it on (one
# shared statement per check), and on two instances at once (16 chains each, figures summed).
scale_out() { # $1 = DATABASE_URL
  local url=$1 rps
  refresh_rps() { # $1 = base, $2 = tokens, $3 = connections
    BATON_TOKENS=$2 wrk -t"$3" -c"$3" -d"${SECS}s" -s bench/refresh.lua "$1" | awk '/Requests\/sec/ {print $2}'
  }
  for limit in 0 1000000; do
    local port
    port=$(free_port)
    start_server "scale-$limit" "$url" "$port" RATE_LIMIT_REFRESH=$limit
    rps=$(refresh_rps "http://127.0.0.1:$port" "$(sign_up "http://127.0.0.1:$port" "one$limit-" 32)" 32)
    echo "refresh on PostgreSQL, 1 instance, RATE_LIMIT_REFRESH=$limit: $rps req/s"
    kill "$SERVER_PID"
  done
  local a b pa pb ta tb
  pa=$(free_port)
  start_server scale-a "$url" "$pa" RATE_LIMIT_REFRESH=1000000
  a=$SERVER_PID
  pb=$(free_port)
  start_server scale-b "$url" "$pb" RATE_LIMIT_REFRESH=1000000
  b=$SERVER_PID
  ta=$(sign_up "http://127.0.0.1:$pa" two-a 16)
  tb=$(sign_up "http://127.0.0.1:$pb" two-b 16)
  refresh_rps "http://127.0.0.1:$pa" "$ta" 16 >"$WORK/rps-a" &
  local wa=$!
  refresh_rps "http://127.0.0.1:$pb" "$tb" 16 >"$WORK/rps-b"
  wait $wa
  echo "refresh on PostgreSQL, 2 instances, RATE_LIMIT_REFRESH=1000000: $(python3 -c "import sys; print(round(float(sys.argv[1]) + float(sys.argv[2]), 2))" "$(cat "$WORK/rps-a")" "$(cat "$WORK/rps-b")") req/s (sum)"
  kill "$a" "$b"
}

# Every scenario on a running server: $1 = label (in every row's name), $2 = base URL, $3 = its
# pid, $4 = DATABASE_URL, $5 = the name prefix of its users.
scenarios() {
  local label=$1 base=$2 pid=$3 url=$4 prefix=$5
  say "Baton ($label): signing up 32 users"
  local tokens=() access="" body
  for i in $(seq 0 31); do
    body=$(curl -fsS -H 'content-type: application/json' -d "{\"username\":\"$prefix$i\",\"password\":\"correct horse battery staple\"}" "$base/api/auth/signup")
    tokens+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshToken"])' <<<"$body")")
    [ "$i" = 0 ] && access=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])' <<<"$body")
  done
  local before
  before=$(db_size "$url")
  RSS_PID=$pid
  bench "SSR /login ($label)" -t2 -c32 -d"${SECS}s" -s bench/report.lua "$base/login"
  bench "secret ($label)" -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $access" -s bench/report.lua "$base/api/users/secret"
  # The same with DPoP, as the browser app calls it: an ES256 verification and a replay check per
  # call (proofs made beforehand). Then refreshes of 32 bound sessions, a proof each.
  local python=${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup/examples/bin/python
  if "$python" -c "import cryptography" 2>/dev/null; then
    say "making DPoP proofs"
    "$python" bench/dpop.py secret "$base" "${prefix}dpop" "$((SECS * 40000))" "$WORK/proofs"
    BATON_PROOFS="$WORK/proofs" BATON_THREADS=2 bench "secret with DPoP ($label)" -t2 -c32 -d"${SECS}s" -s "$WORK/dpop.lua" "$base"
    "$python" bench/dpop.py refresh "$base" "${prefix}chain" 32 "$((SECS * 1500))" "$WORK/refresh-proofs"
    BATON_PROOFS="$WORK/refresh-proofs" bench "refresh with DPoP, 32 chains ($label)" -t32 -c32 -d"${SECS}s" -s "$WORK/dpop_refresh.lua" "$base"
    rm -f "$WORK/proofs" "$WORK"/refresh-proofs-*
  else
    say "DPoP skipped: run scripts/test.sh once (its setup installs the cryptography package)"
  fi
  # One wrk thread per connection: the script's state (the chain's token) is per thread.
  BATON_TOKENS=$(IFS=,; echo "${tokens[*]}") bench "refresh, 32 chains ($label)" -t32 -c32 -d"${SECS}s" -s "$WORK/refresh.lua" "$base"
  export BATON_LOGIN_PREFIX=$prefix
  bench "login, 32 connections ($label)" -t2 -c32 -d"${SECS}s" -s "$WORK/login.lua" "$base"
  # The flood's own figures are printed, not tabled: its logins wait behind the protected calls
  # (hashing runs at a lower priority), and past 5 s in line they get 503 with Retry-After.
  BATON_BENCH_OUT=/dev/null bench "(the login flood itself, 16 conns)" -t1 -c16 -d"${SECS}s" -s "$WORK/login.lua" "$base" &
  local flood=$!
  sleep 1
  bench "secret during login flood ($label)" -t2 -c32 -d"$((SECS - 2))s" -H "Authorization: Bearer $access" -s bench/report.lua "$base/api/users/secret"
  wait $flood
  RSS_PID=""
  # Its reference: the bare hello (with the same headers) while the same flood runs. What the
  # hashes do to every process on these cores (CPU, caches) is the machine's, not Baton's.
  BATON_BENCH_OUT=/dev/null bench "(the login flood again, 16 conns)" -t1 -c16 -d"${SECS}s" -s "$WORK/login.lua" "$base" >/dev/null &
  flood=$!
  sleep 1
  bench "hello + Baton's headers during login flood ($label)" -t2 -c32 -d"$((SECS - 2))s" -s bench/report.lua "http://127.0.0.1:$HELLO_PORT/headers"
  wait $flood
  echo "database ($label) before: $before"
  echo "database ($label) after:  $(db_size "$url")"
}

server_warnings() { # $1 = label
  if grep -E " (ERROR|WARN) " "$WORK/server-$1.log" | head -5 | grep -q .; then
    say "server warnings ($1):"
    grep -E " (ERROR|WARN) " "$WORK/server-$1.log" | head -5 >&2
  fi
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# Seconds since $1 (date +%s.%N), to two places.
since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$1"; }

run_baton() { # $1 = label, $2 = DATABASE_URL
  local label=$1 url=$2 port
  port=$(free_port)
  # The per-address limits are off: wrk is one address, and this measures throughput, not refusals.
  start_server "$label" "$url" "$port"
  scenarios "$label" "http://127.0.0.1:$port" "$SERVER_PID" "$url" bench
  [ "$label" = sqlite ] && BASE_FOR_FIRST_LOAD=http://127.0.0.1:$port
  server_warnings "$label"
}

ended_sessions() { # $1 = DATABASE_URL: sessions that expired over a day ago
  local q="SELECT COUNT(*) FROM sessions WHERE expires_at < $(($(date +%s) * 1000 - 86400000))"
  case "$1" in
    sqlite:*) python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "${1#sqlite://}" "$q" ;;
    *) psql -qtA "$1" -c "$q" ;;
  esac
}

# A new database seeded with $SCALE accounts and live sessions, every scenario again; then as many
# long-ended sessions, purged from the start while the secret runs. $1 = database, $2 = its URL.
run_scale() {
  local label="$1 @$SCALE" url=$2 port started seconds
  port=$(free_port)
  start_server "$label" "$url" "$port" # creates and migrates it
  stop_server
  say "seeding $SCALE accounts with live sessions ($1)"
  seconds=$(python3 bench/seed.py "$url" "$SCALE" live)
  echo "seeded $SCALE accounts, as many live sessions and twice as many security events ($1) in $seconds s"
  started=$(date +%s.%N)
  start_server "$label" "$url" "$port"
  echo "start-up with $SCALE live sessions ($1): $(since "$started") s to a healthy /healthz"
  python3 - "$(db_size "$url")" "$SCALE" "$1" <<'PY'
import re, sys
size, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = re.match(r"([\d.]+) ?(MB|kB|GB|bytes)", size)
if m:
    total = float(m.group(1)) * {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
    print(f"database ({label} @{n}): {size}; {total / n:.0f} bytes per live session (with its account and events)")
PY
  scenarios "$label" "http://127.0.0.1:$port" "$SERVER_PID" "$url" scaled
  stop_server
  server_warnings "$label"

  say "seeding $SCALE ended sessions ($1)"
  seconds=$(python3 bench/seed.py "$url" "$SCALE" ended)
  echo "seeded $SCALE sessions that ended 400 days ago ($1) in $seconds s: $(ended_sessions "$url") to purge"
  started=$(date +%s.%N)
  start_server "$label, purge" "$url" "$port"
  echo "start-up with $SCALE live and $SCALE ended sessions ($1): $(since "$started") s to a healthy /healthz"
  # The purge begins at start: the secret runs meanwhile (a fresh login's token), then again once
  # it is done, for its quiet reference.
  local access left waited=0
  scaled_access() {
    curl -fsS -H 'content-type: application/json' -d '{"username":"scaled0","password":"correct horse battery staple"}' \
      "http://127.0.0.1:$port/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
  }
  access=$(scaled_access)
  # Start-up compresses the site's files for a few seconds: not the purge's doing.
  sleep 5
  [ "$(ended_sessions "$url")" != 0 ] || say "the purge was over before the secret ran: 'during' is not during it"
  RSS_PID=$SERVER_PID
  bench "secret during the purge ($label)" -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $access" -s bench/report.lua "http://127.0.0.1:$port/api/users/secret"
  left=$(ended_sessions "$url")
  echo "ended sessions left after the ${SECS} s of the secret ($1): $left"
  while [ "$left" != 0 ] && [ $waited -lt 900 ]; do
    sleep 5
    waited=$((waited + 5))
    left=$(ended_sessions "$url")
  done
  echo "purge of $SCALE ended sessions ($1): done within $(since "$started") s of start ($left left)"
  [ "$left" = 0 ] || say "the purge was still running: the secret 'after' it is not a quiet reference"
  # A fresh token: the purge may outlast the first one's lifetime.
  access=$(scaled_access)
  bench "secret after the purge ($label)" -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $access" -s bench/report.lua "http://127.0.0.1:$port/api/users/secret"
  RSS_PID=""
  stop_server
  server_warnings "$label, purge"
}

run_baton sqlite "sqlite://$WORK/data-sqlite/baton.db"
# The browser's first load: the bundle's size on the wire and the time to an interactive /login.
if [ -d end2end/node_modules/@playwright/test ]; then
  node bench/first-load.cjs "$BASE_FOR_FIRST_LOAD" >"$WORK/first-load.txt"
else
  echo "first load skipped: run scripts/test.sh once (it installs Playwright)" >"$WORK/first-load.txt"
fi
stop_server
if [ "$SCALE" -gt 0 ]; then
  mkdir -p "$WORK/data-scale"
  run_scale sqlite "sqlite://$WORK/data-scale/baton.db"
fi
if [ "$PG" = 1 ]; then
  PG_PORT=$(free_port)
  chmod 755 "$WORK"
  mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg -c max_connections=200" start >/dev/null
  run_baton postgres "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  stop_server
  scale_out "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  if [ "$SCALE" -gt 0 ]; then
    psql -qtA "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -c "CREATE DATABASE scale" >/dev/null
    run_scale postgres "postgres://postgres@127.0.0.1:$PG_PORT/scale"
  fi
fi

python3 bench/table.py "$BATON_BENCH_OUT" "$HASH_MS" "$HASH_ALL_MS" "$WORK/rss.tsv"

cat "$WORK/first-load.txt"
