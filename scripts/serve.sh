#!/usr/bin/env bash
# Sets up what is missing, builds in release mode and serves Baton on LEPTOS_SITE_ADDR
# (default http://127.0.0.1:3000), with its SQLite database under ./data.
# With --ionic, also builds the Ionic client (clients/ionic) and serves it on
# http://127.0.0.1:8100 (IONIC_PORT), calling this Baton, which allows that origin (CORS_ORIGINS).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
IONIC=0
case "${1:-}" in
  "") ;;
  --ionic) IONIC=1 ;;
  *) echo "usage: scripts/serve.sh [--ionic]" >&2; exit 2 ;;
esac
if [ "$IONIC" = 1 ]; then scripts/setup.sh --ionic; else scripts/setup.sh; fi
cargo leptos build --release --split
export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}" LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=baton LEPTOS_ENV=PROD
if [ "$IONIC" = 1 ]; then
  IONIC_PORT=${IONIC_PORT:-8100}
  api="http://${LEPTOS_SITE_ADDR/0.0.0.0/127.0.0.1}"
  export CORS_ORIGINS="${CORS_ORIGINS:+$CORS_ORIGINS,}http://127.0.0.1:$IONIC_PORT,http://localhost:$IONIC_PORT"
  (cd clients/ionic && npm run build)
  node clients/ionic/scripts/serve.mjs --port "$IONIC_PORT" --api "$api" &
  ionic_pid=$!
  trap 'kill $ionic_pid 2>/dev/null' EXIT
  sleep 1
  kill -0 "$ionic_pid" 2>/dev/null || { echo "[serve] the Ionic app could not be served on port $IONIC_PORT" >&2; exit 1; }
  echo "[serve] Baton on http://$LEPTOS_SITE_ADDR, its Ionic app on http://127.0.0.1:$IONIC_PORT (Ctrl-C stops both)"
  target/release/server
else
  echo "[serve] Baton on http://$LEPTOS_SITE_ADDR (Ctrl-C stops it)"
  exec target/release/server
fi
