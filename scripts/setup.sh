#!/usr/bin/env bash
# Installs what building and testing Herald needs, pinned and idempotent: each step is skipped
# when the tool is already present at the pinned version. Safe to run again and again.
#   scripts/setup.sh          Rust tools, wasm target, npm packages
#   scripts/setup.sh --e2e    also Chromium (Debian package) for the Playwright tests
set -euo pipefail

WASM_BINDGEN_VERSION=0.2.130
WASM_OPT_VERSION=0.116.1

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

want_e2e=0
for a in "$@"; do [ "$a" = "--e2e" ] && want_e2e=1; done

# 1. The WASM target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# Installs a crate whose own Cargo.lock pins a version the registry cannot serve here:
# take its source, move that one dependency to a version that exists, install from the path.
install_patched() { # crate version binary pkg-to-fix precise-version
  local crate=$1 version=$2 bin=$3 fix=$4 precise=$5
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -q "$version"; then
    return
  fi
  log "installing $crate $version (builds from source, a few minutes)"
  local work; work=$(mktemp -d)
  (cd "$work" && cargo init --quiet --name fetchsrc && cargo add --quiet "$crate@=$version" && cargo fetch --quiet)
  local src; src=$(ls -d "$HOME"/.cargo/registry/src/*/"$crate-$version" | head -n1)
  cp -r "$src" "$work/src-copy"
  (cd "$work/src-copy" && { [ -z "$fix" ] || cargo update --quiet -p "$fix" --precise "$precise"; } \
    && cargo install --quiet --locked --path . --root "$HOME/.cargo")
  rm -rf "$work"
}

# 2. wasm-bindgen CLI: must equal the wasm-bindgen crate version in Cargo.lock.
install_patched wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen webpki-roots 1.0.10

# 3. wasm-opt from crates.io (Debian's binaryen 108 produces bundles that fail to hydrate).
if ! { command -v wasm-opt >/dev/null && wasm-opt --version 2>/dev/null | grep -q "version 116"; }; then
  log "installing wasm-opt $WASM_OPT_VERSION (builds binaryen with g++, about 10 minutes once)"
  cargo install --quiet --locked wasm-opt --version "$WASM_OPT_VERSION"
fi

# 4. Playwright (the npm package only; the browser comes from Debian).
if [ ! -x end2end/node_modules/.bin/playwright ]; then
  log "installing end2end npm packages"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi

# 5. Chromium from Debian.
if [ "$want_e2e" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  log "installing chromium from Debian"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
log "tools ready"
