#!/usr/bin/env bash
# Sets up what is missing, then runs every test: the Rust unit and integration tests on SQLite, the
# integration tests again on a throwaway PostgreSQL cluster, and the Playwright suite in headless
# Chromium against the server the Rust tests built, serving the release build of the WASM, on free
# ports (one behind nginx), then Schemathesis. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
# A one-off build gains nothing from incremental caches, which take gigabytes.
export CARGO_INCREMENTAL=0
scripts/setup.sh --tests

say() { printf '\033[1m[test %s]\033[0m %s\n' "$(date +%T)" "$*"; }
WORK=$(mktemp -d /tmp/baton-test.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  if [ -f "$WORK/pg/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# The connection-cap test opens 1,100 sockets from one address; Debian's soft limit is 1,024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- 0. the habits: formatting, lints of the browser's build (frontend, app with hydrate), no cycles
say "cargo fmt --check; cargo clippy -D warnings (wasm32); module graph"
cargo fmt --all --check
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
python3 scripts/module_graph.py

# --- 1. Rust tests on SQLite, linted as they build ---------------------------------------------
# Clippy is the compiler of the workspace's crates here, as `cargo clippy` runs it (the same
# RUSTC_WORKSPACE_WRAPPER and CLIPPY_ARGS), so the test build is also the lint run: the
# dependencies are built once, not checked for clippy and then built for the tests (6 min cold).
# clippy-driver is rustc with clippy's passes: the binaries tested are the same code, built with
# fewer MIR optimisations (it turns them off to lint precisely).
say "cargo test --workspace (SQLite), built by clippy -D warnings"
CLIPPY_DRIVER=$(rustup which clippy-driver)
[ -x "$CLIPPY_DRIVER" ] || { echo "no clippy-driver ($CLIPPY_DRIVER): scripts/setup.sh installs it" >&2; exit 1; }
RUSTC_WORKSPACE_WRAPPER=$CLIPPY_DRIVER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
  cargo test --workspace 2>&1 | tee "$WORK/cargo-sqlite.log"

# --- 2. the integration tests again on PostgreSQL -----------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_PORT=$(free_port)
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/server.log" \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg -c fsync=off -c max_connections=400" start >/dev/null
# The binary `cargo test --workspace` built: `cargo test -p server` resolves features for one
# package and rebuilt it (a minute), for the same code. Run from the package's root, as cargo does.
API_TESTS=$(sed -n 's|.*Running tests/api/main.rs (\(target/debug/deps/api-[0-9a-f]*\)).*|\1|p' "$WORK/cargo-sqlite.log" | head -1)
[ -n "$API_TESTS" ] && [ -x "$API_TESTS" ] || { echo "cargo test's output names no api test binary" >&2; exit 1; }
say "the api tests again (PostgreSQL): $API_TESTS"
(cd server && BATON_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" "$ROOT/$API_TESTS") 2>&1 \
  | tee "$WORK/cargo-postgres.log"

# --- 3. Playwright: the release WASM, served by the server binary the Rust tests just built -------
# Building the server a second time with the release profile took half of this script's time
# (16 of 30 minutes on 2 cores) and tests nothing more: the browser meets the release WASM either way.
say "cargo leptos build --release --split --frontend-only"
cargo leptos build --release --split --frontend-only
SERVER_BIN=target/debug/server
[ -x "$SERVER_BIN" ] || { echo "$SERVER_BIN missing: cargo test should have built it" >&2; exit 1; }

start_server() { # $1 = variable to set to its URL; further args are VAR=value settings (@PORT@: its port)
  local name=$1; shift
  local port; port=$(free_port)
  mkdir -p "$WORK/$name"
  env BATON_DATA_DIR="$WORK/$name" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site \
    LEPTOS_OUTPUT_NAME=baton RUST_LOG=debug "${@//@PORT@/$port}" "$SERVER_BIN" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { export "$name=http://127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "server $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
start_nginx() { # $1 = variable to set to its https URL; $2 = the URL of the Baton behind it; $3 = its port
  local name=$1 upstream=${2#http://} port=$3
  local dir="$WORK/nginx-$name"; mkdir -p "$dir/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  sed -e "s|@LISTEN@|127.0.0.1:$port|" -e "s|@SERVER_NAME@|127.0.0.1|" -e "s|@UPSTREAM@|$upstream|" -e "s|@CERT@|$dir/cert.pem|" \
    -e "s|@KEY@|$dir/key.pem|" -e "s|@ACCESS_LOG@|$dir/access.log|" deploy/nginx.conf >"$dir/site.conf"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/site.conf;
}
CONF
  nginx -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/out.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fsSk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { export "$name=https://127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "nginx in front of $2 did not start:" >&2; cat "$dir/error.log" "$dir/out.log" >&2; exit 1
}
# The whole suite signs up and logs in from 127.0.0.1: the per-address limits are raised (their
# own tests are in server/tests/api/throttling.rs); the per-account backoff keeps its defaults.
LIMITS=(RATE_LIMIT_SIGNUP=600 RATE_LIMIT_LOGIN=600 RATE_LIMIT_SESSIONS=600 RATE_LIMIT_RESET=600)
# A real SMTP server (Debian's aiosmtpd): the browser tests read the mails it keeps in MAIL_DIR.
export MAIL_DIR="$WORK/mail"
/usr/bin/python3 scripts/smtp_sink.py "$MAIL_DIR" >"$WORK/smtp.port" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/smtp.port" ] && break; sleep 0.1; done
SMTP_URL="smtp://127.0.0.1:$(head -1 "$WORK/smtp.port")"
# The grace window is for one client's lost answer: the browser must coordinate its tabs without it.
SETTINGS=("${LIMITS[@]}" REFRESH_REUSE_GRACE=0)
# The main server sits behind nginx (deploy/nginx.conf: TLS, X-Forwarded-For), as in production,
# with PUBLIC_URL naming nginx's origin: the browser's DPoP proofs must name it.
NGINX_PORT=$(free_port)
start_server BASE_URL "${SETTINGS[@]}" TRUSTED_PROXIES=127.0.0.1 HSTS_MAX_AGE=31536000 PUBLIC_URL="https://127.0.0.1:$NGINX_PORT" \
  SMTP_URL="$SMTP_URL"
start_nginx BASE_URL "$BASE_URL" "$NGINX_PORT"
start_server SHORT_TTL_URL ACCESS_TOKEN_TTL=2 RESET_TOKEN_TTL=3 "${SETTINGS[@]}" SMTP_URL="$SMTP_URL" \
  PUBLIC_URL="http://127.0.0.1:@PORT@"
say "Playwright (headless Chromium) against $BASE_URL and $SHORT_TTL_URL"
(cd end2end && npx playwright test --project=chromium) 2>&1 | tee "$WORK/playwright.log"

# The Ionic client (clients/ionic): its types generated from the live OpenAPI document (the build
# fails if the app does not follow the server's contract), its production build served on its own
# origin, calling a Baton whose CORS_ORIGINS names it; access tokens live 3 s there (no leeway), so
# its tests meet real expiry.
IONIC_PORT=$(free_port)
start_server IONIC_API_URL "${SETTINGS[@]}" ACCESS_TOKEN_TTL=3 JWT_LEEWAY=0 PUBLIC_URL="http://127.0.0.1:@PORT@" \
  CORS_ORIGINS="http://127.0.0.1:$IONIC_PORT"
say "clients/ionic: its openapi.json is the live document; npm run build against the live one"
curl -fsS "$IONIC_API_URL/api/openapi.json" >"$WORK/openapi.json"
if ! python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
  "$WORK/openapi.json" clients/ionic/openapi.json; then
  echo "clients/ionic/openapi.json is not the server's OpenAPI document (diff below): with Baton on port 3000," >&2
  echo "run 'npm run update-openapi' in clients/ionic, and make the app follow the change" >&2
  diff <(python3 -m json.tool --sort-keys clients/ionic/openapi.json) <(python3 -m json.tool --sort-keys "$WORK/openapi.json") | head -40 >&2
  exit 1
fi
if ! (cd clients/ionic && BATON_OPENAPI="$IONIC_API_URL/api/openapi.json" npm run build) >"$WORK/ionic-build.log" 2>&1; then
  cat "$WORK/ionic-build.log" >&2; echo "the Ionic client's build failed (above)" >&2; exit 1
fi
grep -E 'Initial total|generated from' "$WORK/ionic-build.log" || true
node clients/ionic/scripts/serve.mjs --port "$IONIC_PORT" --api "$IONIC_API_URL" >"$WORK/ionic.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 101); do
  curl -fsS "http://127.0.0.1:$IONIC_PORT/config.json" 2>/dev/null | grep -q "$IONIC_API_URL" && break
  [ "$i" = 101 ] && { echo "the Ionic app's server did not start:" >&2; cat "$WORK/ionic.log" >&2; exit 1; }
  sleep 0.1
done
say "Playwright: the Ionic app at http://127.0.0.1:$IONIC_PORT against $IONIC_API_URL"
(cd end2end && IONIC_URL="http://127.0.0.1:$IONIC_PORT" IONIC_API_URL=$IONIC_API_URL npx playwright test --project=ionic) 2>&1 \
  | tee -a "$WORK/playwright.log"

# The build a developer runs (`cargo leptos watch --split`): server and WASM in debug, both with
# `--cfg erase_components` as cargo-leptos sets it (its own target directory, so the test build's
# cache stays), served and hydrated in Chromium.
say "cargo leptos build --split (the dev build; $(df -h --output=avail . | tail -1 | tr -d ' ') free on disk)"
dev_build() { CARGO_TARGET_DIR=target/dev LEPTOS_SITE_ROOT=target/site-dev cargo leptos build --split >"$WORK/dev-build.log" 2>&1; }
dev_build_errors() { grep -nE -A12 'error(\[|:)|panicked|No space left|Killed|signal: 9' "$WORK/dev-build.log" | head -150; }
# Once, a CI run's dev build failed with its cause scrolled out of the printed tail: on failure its
# errors are printed here and it is tried once more; failing again, they are the script's last words.
if ! dev_build; then
  dev_build_errors || tail -60 "$WORK/dev-build.log"
  df -h . && free -m
  say "the dev build failed (above); trying it once more"
  if ! dev_build; then
    tail -40 "$WORK/dev-build.log"
    echo "the dev build failed twice; its errors:" >&2
    dev_build_errors >&2 || true
    exit 1
  fi
fi
SERVER_BIN=target/dev/debug/server start_server DEV_URL LEPTOS_SITE_ROOT=target/site-dev "${SETTINGS[@]}"
say "Playwright: the dev build at $DEV_URL"
(cd end2end && DEV_URL=$DEV_URL npx playwright test --project=dev-build) 2>&1 | tee -a "$WORK/playwright.log"
if grep -qE '^ +[0-9]+ skipped' "$WORK/playwright.log"; then echo "Playwright skipped tests" >&2; exit 1; fi

# Through the proxy, Baton sees the client's address (127.0.0.2 here), not nginx's, and not what the
# client wrote in X-Forwarded-For; and the pages carry HSTS.
say "through nginx: the client's own address reaches Baton"
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
via=$(curl -fsSk --interface 127.0.0.2 -H 'X-Forwarded-For: 6.6.6.6' -X POST "$BASE_URL/api/auth/signup" \
  -H 'content-type: application/json' -d '{"username":"via-nginx","password":"correct horse battery"}' | json_field '["accessToken"]')
seen=$(curl -fsSk "$BASE_URL/api/auth/sessions" -H "Authorization: Bearer $via" | json_field '[0]["ip"]')
[ "$seen" = 127.0.0.2 ] || { echo "behind nginx, Baton saw the client as $seen, not 127.0.0.2" >&2; exit 1; }
curl -fsSkI "$BASE_URL/login" | grep -qi '^strict-transport-security: max-age=31536000' ||
  { echo "no HSTS through nginx" >&2; exit 1; }

# The servers' debug logs of the whole browser run: no token (of a session or a mailed link),
# password or hash in any line.
say "scanning the servers' logs for secrets"
logs=("$WORK/BASE_URL.log" "$WORK/SHORT_TTL_URL.log" "$WORK/IONIC_API_URL.log" "$WORK/nginx-BASE_URL/access.log")
if grep -nE 'brt_|blk_|bmc_|otpauth:|eyJ[A-Za-z0-9_-]{8,}|\$argon2|correct horse battery|[Bb]earer [A-Za-z0-9]' "${logs[@]}"; then
  echo "secrets in the server logs (lines above)" >&2; exit 1
fi
grep -q 'event="refresh"' "${logs[@]}" || { echo "the logs hold no security events: is logging on?" >&2; exit 1; }
echo "$(cat "${logs[@]}" | wc -l) log lines, no secrets"

# --- 4. Schemathesis: every check, against the OpenAPI document, as a logged-in user ---------------
# Limits off: a 429 is documented, but it would stop the fuzzer reaching the handlers.
start_server SCHEMA_URL RATE_LIMIT_SIGNUP=0 RATE_LIMIT_LOGIN=0 RATE_LIMIT_REFRESH=0 RATE_LIMIT_SESSIONS=0 RATE_LIMIT_RESET=0
# The README's DPoP example client, as a REST client would run it.
say "examples/dpop_client.py against $SCHEMA_URL"
"${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup/examples/bin/python" examples/dpop_client.py "$SCHEMA_URL" dpop-example "correct horse battery"
access=$(curl -fsS -X POST "$SCHEMA_URL/api/auth/signup" -H 'content-type: application/json' \
  -d '{"username":"schemathesis","password":"correct horse battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
say "Schemathesis against $SCHEMA_URL/api/openapi.json"
SCHEMATHESIS=${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup/schemathesis/bin/schemathesis
# logout-all would end the fuzzer's own session; its tests are in server/tests/api/sessions.rs.
if ! "$SCHEMATHESIS" --config-file scripts/schemathesis.toml run "$SCHEMA_URL/api/openapi.json" --checks all \
  -H "Authorization: Bearer $access" --exclude-path /api/auth/logout-all --request-timeout 10 --seed 1 \
  2>&1 | tee "$WORK/schemathesis.log"; then
  echo "Schemathesis found failures (above)" >&2; exit 1
fi

rust=$(grep -hoE 'test result: ok\. [0-9]+ passed' "$WORK"/cargo-*.log | awk '{s+=$4} END {print s+0}')
e2e=$(grep -oE '^ +[0-9]+ passed' "$WORK/playwright.log" | awk '{s+=$1} END {print s+0}')
say "Rust tests (SQLite and PostgreSQL runs): $rust passed; Playwright: $e2e passed"
echo "total: $((rust + e2e)) passed, 0 failed"
