#!/usr/bin/env bash
# Installs whatever Baton's build and tests need and is missing; skips what is there.
# Safe to run again: the second run only checks. Usage: scripts/setup.sh [--tests] [--bench] [--ionic]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CARGO_LEPTOS_VERSION=0.3.11
BINARYEN_VERSION=132.0.0
WASM_TARGET=wasm32-unknown-unknown
WITH_TESTS=0
WITH_BENCH=0
WITH_IONIC=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1; WITH_IONIC=1 ;;
    --bench) WITH_BENCH=1 ;;
    --ionic) WITH_IONIC=1 ;;
    *) echo "usage: scripts/setup.sh [--tests] [--bench] [--ionic]" >&2; exit 2 ;;
  esac
done

say()  { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
export PATH="$HOME/.cargo/bin:$PATH"

apt_missing() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  echo "${missing[@]:-}"
}
apt_install() {
  local missing; missing=$(apt_missing "$@")
  if [ -z "$missing" ]; then say "apt packages present: $*"; return; fi
  say "apt-get install $missing"
  if [ ! -f /var/lib/apt/periodic/baton-updated ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ]; then
    apt-get update -q && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/baton-updated
  fi
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

# --- 1. a Rust toolchain whose std exists for wasm32 --------------------------------------------
toolchain_has_wasm() { # $1 = toolchain name
  local sysroot; sysroot=$(rustc +"$1" --print sysroot 2>/dev/null) || return 1
  ls "$sysroot/lib/rustlib/$WASM_TARGET/lib/"libstd-*.rlib >/dev/null 2>&1
}
rustc_at_least_196() { # cargo-leptos 0.3 needs rustc >= 1.96
  local v; v=$(rustc +"$1" --version 2>/dev/null | awk '{print $2}') || return 1
  [ "$(printf '%s\n1.96.0\n' "${v%%-*}" | sort -V | head -1)" = "1.96.0" ]
}

# rust-web-llvm brings rust-lld, the wasm32 linker: only a Recommends of rustc-web, so named here.
# gcc: SQLite (bundled) and mimalloc are C, built by their crates.
WEB_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-clippy rustfmt-web rust-web-llvm lld-22 gcc libc6-dev)
TOOLCHAIN=""
current=$(rustup show active-toolchain 2>/dev/null | awk '{print $1}' || true)
if [ -n "$current" ] && [ "$current" != web ] && toolchain_has_wasm "$current" && rustc_at_least_196 "$current"; then
  TOOLCHAIN=$current
elif toolchain_has_wasm web 2>/dev/null; then
  TOOLCHAIN=web
else
  # Where rustup can download, its target is the simplest route; where it cannot, it hangs, hence the timeout.
  default=$(rustup default 2>/dev/null | awk '{print $1}' || true)
  if [ -n "$default" ] && rustc_at_least_196 "$default" && timeout 45 rustup target add --toolchain "$default" "$WASM_TARGET" >/dev/null 2>&1; then
    TOOLCHAIN=$default
    say "rustup added $WASM_TARGET to $default"
  else
    say "rustup cannot provide $WASM_TARGET here: using Debian's rustc-web and building its wasm32 std from source"
    apt_install "${WEB_PACKAGES[@]}"
    rustup toolchain list | grep -q '^web' || rustup toolchain link web /usr
    libdir=/usr/lib/rustlib/$WASM_TARGET/lib
    if ! ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then
      say "building the $WASM_TARGET std with $(/usr/bin/rustc --version) (a few minutes, once)"
      tmp=$(mktemp -d)
      (cd "$tmp" && /usr/bin/cargo new -q --lib wasmstd && cd wasmstd &&
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes -Zforce-unstable-if-unmarked" \
        /usr/bin/cargo build -q --release --target "$WASM_TARGET" \
          -Zbuild-std=std,panic_abort,panic_unwind,proc_macro)
      mkdir -p "$libdir"
      find "$tmp/wasmstd/target/$WASM_TARGET/release/deps" -name '*.rlib' ! -name 'libwasmstd-*' -exec cp {} "$libdir/" \;
      rm -rf "$tmp"
    fi
    TOOLCHAIN=web
  fi
fi
if [ "$TOOLCHAIN" = web ]; then
  apt_install "${WEB_PACKAGES[@]}" # a machine set up before rust-web-llvm was named lacks it
  # An override, not a rust-toolchain.toml: a toolchain file would make rustup try to download elsewhere.
  [ "$(rustup show active-toolchain 2>/dev/null | awk '{print $1}')" = web ] || rustup override set web >/dev/null
fi
say "toolchain: $TOOLCHAIN ($(rustc +"$TOOLCHAIN" --version))"
# The test command lints and checks formatting: clippy and rustfmt of this very toolchain.
for tool in clippy fmt; do
  if ! cargo +"$TOOLCHAIN" "$tool" --version >/dev/null 2>&1; then
    [ "$TOOLCHAIN" = web ] || timeout 120 rustup component add --toolchain "$TOOLCHAIN" clippy rustfmt >/dev/null 2>&1 || true
  fi
  cargo +"$TOOLCHAIN" "$tool" --version >/dev/null 2>&1 ||
    { printf '\033[1;31m[setup] FAILED:\033[0m cargo %s is missing for %s (Debian: rust-web-clippy, rustfmt-web)\n' "$tool" "$TOOLCHAIN" >&2; exit 1; }
done

# --- 2. build tools: cargo-leptos, wasm-bindgen-cli (the version in Cargo.lock), wasm-opt ------------
if [ "$(cargo-leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (once)"
  # Its release profile asks for fat LTO in one codegen unit: 35 minutes on 2 cores for a build
  # tool whose speed does not matter here. Plain optimisation builds it several times faster.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo +"$TOOLCHAIN" install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
else
  say "cargo-leptos $CARGO_LEPTOS_VERSION present"
fi

WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (matches Cargo.lock; about 8 minutes, once)"
  # Not --locked: one of its locked dependencies is missing from the registry.
  cargo +"$TOOLCHAIN" install wasm-bindgen-cli --version "$WB_VERSION" --force
else
  say "wasm-bindgen-cli $WB_VERSION present"
fi

# Debian's binaryen 108 silently breaks hydration; npm's current build does not.
if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
  say "installing wasm-opt from npm binaryen@$BINARYEN_VERSION"
  npm install -g --no-fund --no-audit "binaryen@$BINARYEN_VERSION" >/dev/null
else
  say "wasm-opt ${BINARYEN_VERSION%%.*} present"
fi

# --- 3. test-only: Chromium, PostgreSQL, the Playwright packages, Schemathesis -------------------
SCHEMATHESIS_VERSION=4.32.5
CRYPTOGRAPHY_VERSION=50.0.2
VENVS=${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup
# pip_venv NAME PACKAGE VERSION [MORE==PINS]: PACKAGE==VERSION (and the other pins) in a venv of
# Debian's python3 (PyPI is reachable; nothing lands in the system's Python) at $VENVS/NAME-VERSION,
# then $VENVS/NAME pointing at it: the version-free name the scripts use.
pip_venv() {
  local name=$1 package=$2 version=$3 venv="$VENVS/$1-$3"
  shift 3
  local probe="import importlib.metadata as m; print(m.version('$package'))"
  if [ "$("$venv/bin/python" -c "$probe" 2>/dev/null)" = "$version" ]; then
    say "$package $version present"
  else
    say "pip install $package==$version (a venv under ~/.cache)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$package==$version" "$@"
  fi
  ln -sfn "$venv" "$VENVS/$name"
}
npm_ci() { # $1: a folder with a package-lock.json
  if [ ! -d "$1/node_modules" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    say "npm ci in $1/"
    (cd "$1" && npm ci --no-fund --no-audit)
  else
    say "$1/node_modules up to date"
  fi
}
if [ "$WITH_TESTS" = 1 ]; then
  # python3-aiosmtpd: a real SMTP server the tests mail to (scripts/smtp_sink.py).
  apt_install chromium postgresql python3-venv nginx openssl python3-aiosmtpd
  pip_venv schemathesis schemathesis "$SCHEMATHESIS_VERSION"
  # The DPoP example client (examples/dpop_client.py) signs with the `cryptography` package.
  pip_venv examples cryptography "$CRYPTOGRAPHY_VERSION"
  npm_ci end2end
fi
# The Ionic client (clients/ionic): Angular and Ionic from npm, installed again only when its
# lockfile changed (npm writes node_modules/.package-lock.json last).
if [ "$WITH_IONIC" = 1 ]; then
  npm_ci clients/ionic
fi
# --- bench-only: wrk, and DRF SimpleJWT (the Python reference scripts/bench.sh runs) ------------
if [ "$WITH_BENCH" = 1 ]; then
  apt_install wrk python3-venv
  pip_venv simplejwt djangorestframework-simplejwt 5.5.1 \
    django==5.2.19 djangorestframework==3.16.1 gunicorn==23.0.0 argon2-cffi==25.1.0
fi
# --- 4. prove that each tool works, so a missing piece fails here, by name ----------------------
fail() { printf '\033[1;31m[setup] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

# A tiny wasm-bindgen crate, linked for wasm32 with the chosen toolchain (rust-lld), bound by
# wasm-bindgen, shrunk by wasm-opt and run by node: the chain the site build takes. Kept under
# ~/.cache, so later runs rebuild nothing and take a second.
check=${XDG_CACHE_HOME:-$HOME/.cache}/baton-setup/wasm-check
mkdir -p "$check/src"
cat >"$check/Cargo.toml" <<TOML
[package]
name = "baton-setup-check"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["cdylib"]
[dependencies]
wasm-bindgen = "=$WB_VERSION"
[workspace]
TOML
printf 'use wasm_bindgen::prelude::*;\n#[wasm_bindgen]\npub fn add(a: u32, b: u32) -> u32 { a + b }\n' >"$check/src/lib.rs"
(cd "$check" && cargo +"$TOOLCHAIN" build -q --release --target "$WASM_TARGET" 2>"$check/build.log") ||
  fail "linking a wasm32 crate with $TOOLCHAIN: $(grep -m1 -E 'error' "$check/build.log")
  (rust-lld comes from Debian's rust-web-llvm; the wasm32 std from rust-web-src; full log: $check/build.log)"
rm -rf "$check/out"
wasm-bindgen --target nodejs --out-dir "$check/out" "$check/target/$WASM_TARGET/release/baton_setup_check.wasm" ||
  fail "wasm-bindgen $WB_VERSION could not bind a wasm32 module"
wasm-opt -Oz "$check/out/baton_setup_check_bg.wasm" -o "$check/out/baton_setup_check_bg.wasm" ||
  fail "wasm-opt (npm binaryen@$BINARYEN_VERSION) could not optimise a wasm32 module"
[ "$(node -e "console.log(require('$check/out/baton_setup_check.js').add(2, 3))")" = 5 ] ||
  fail "the optimised wasm32 module does not run in node"
say "checked: wasm32 link ($TOOLCHAIN, rust-lld), wasm-bindgen $WB_VERSION, wasm-opt, cargo-leptos $CARGO_LEPTOS_VERSION"

if [ "$WITH_TESTS" = 1 ]; then
  # Chromium renders a page headless, as the browser tests run it (as root: no sandbox).
  dom=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --disable-sync --user-data-dir="$(mktemp -d)" \
    --dump-dom 'data:text/html,<p id="check">baton-ok</p>' 2>/dev/null) || true
  case "$dom" in *baton-ok*) ;; *) fail "headless Chromium (Debian package chromium) did not render a page" ;; esac
  # A PostgreSQL cluster starts and answers, as scripts/test.sh makes one (PostgreSQL refuses root).
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$PG_BIN/initdb" ] || fail "PostgreSQL's initdb not found (Debian package postgresql)"
  pg=$(mktemp -d /tmp/baton-setup-pg.XXXXXX)
  chown postgres "$pg"
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_ok=0
  if runuser -u postgres -- "$PG_BIN/initdb" -D "$pg/data" -U postgres --auth=trust >/dev/null 2>&1 &&
     runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg/data" -w -l "$pg/log" \
       -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $pg" start >/dev/null 2>&1; then
    [ "$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc 'SELECT 1' 2>/dev/null)" = 1 ] && pg_ok=1
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$pg"
  [ "$pg_ok" = 1 ] || fail "a PostgreSQL cluster did not start or answer (Debian package postgresql)"
  nginx -v 2>/dev/null || fail "nginx (Debian package nginx) does not run"
  "$VENVS/schemathesis/bin/schemathesis" --version >/dev/null 2>&1 || fail "schemathesis (PyPI, in $VENVS/schemathesis) does not run"
  "$VENVS/examples/bin/python" -c "import cryptography" 2>/dev/null || fail "cryptography (PyPI, in $VENVS/examples) does not import"
  /usr/bin/python3 -c "import aiosmtpd.controller" 2>/dev/null || fail "aiosmtpd (Debian package python3-aiosmtpd) does not import"
  say "checked: headless Chromium, a PostgreSQL cluster, Playwright packages, nginx, schemathesis, cryptography, aiosmtpd"
fi
if [ "$WITH_IONIC" = 1 ]; then
  # Angular 21 needs Node.js ^20.19, ^22.12 or >= 24.
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a >= 24 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' ||
    fail "Node.js $(node --version) does not run the Ionic client's Angular 21 (^20.19, ^22.12 or >= 24)"
  [ -x clients/ionic/node_modules/.bin/ng ] || fail "Angular's CLI (npm, clients/ionic/node_modules) is missing"
  say "checked: Node.js $(node --version), the Ionic client's packages"
fi
if [ "$WITH_BENCH" = 1 ]; then
  { wrk --version 2>&1 || true; } | grep -q '^wrk' || fail "wrk (Debian package wrk) does not run"
  "$VENVS/simplejwt/bin/python" -c "import django, rest_framework_simplejwt, gunicorn, argon2" 2>/dev/null ||
    fail "DRF SimpleJWT (PyPI, in $VENVS/simplejwt) does not import"
  say "checked: wrk, DRF SimpleJWT"
fi
say "ready"
