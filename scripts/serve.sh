#!/usr/bin/env bash
# Sets up what is missing, builds in release mode and serves Baton on LEPTOS_SITE_ADDR
# (default http://127.0.0.1:3000), with its SQLite database under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo leptos build --release --split
export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}" LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=baton LEPTOS_ENV=PROD
echo "[serve] Baton on http://$LEPTOS_SITE_ADDR (Ctrl-C stops it)"
exec target/release/server
