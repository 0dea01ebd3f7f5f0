#!/usr/bin/env bash
# Installs what building Herald needs, pinned and idempotent: every step is skipped when the
# tool is already there at the pinned version, so running it again costs a few seconds.
#   scripts/setup.sh          Rust WASM target, wasm-bindgen, wasm-opt
#   scripts/setup.sh --e2e    also Playwright (npm) and Chromium (Debian) for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# wasm-bindgen's CLI must equal the crate version that Cargo.lock pins.
WASM_BINDGEN_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')

SAY_TAG=setup
log() { say "$@"; }
want_e2e=0
for a in "$@"; do [ "$a" = "--e2e" ] && want_e2e=1; done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# Installs a crate whose own Cargo.lock pins a dependency version the registry cannot serve
# here: take its source, move that one dependency to a version that exists, install from it.
install_patched() { # crate version binary dependency-to-move version-to-move-to
  local crate=$1 version=$2 bin=$3 dep=$4 precise=$5
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -qF "$version"; then
    return
  fi
  log "installing $crate $version from source (about 2 min, once)"
  local work; work=$(mktemp -d)
  (cd "$work" && cargo init --quiet --name fetch-source && cargo add --quiet "$crate@=$version" && cargo fetch --quiet)
  cp -r "$(ls -d "$HOME"/.cargo/registry/src/*/"$crate-$version" | head -n1)" "$work/crate"
  (cd "$work/crate" && cargo update --quiet -p "$dep" --precise "$precise" \
    && CARGO_TARGET_DIR="$work/target" cargo install --quiet --locked --path . --root "$HOME/.cargo")
  rm -rf "$work"
}
install_patched wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen webpki-roots 1.0.10

# wasm-opt from npm's binaryen package (pinned in scripts/tools/package-lock.json): a few
# seconds, where building binaryen from crates.io's wasm-opt crate took 10-28 minutes. Debian's
# binaryen 108 produces bundles that never hydrate; 132 does (the browser tests run on its output).
tools_stamp=scripts/tools/node_modules/.herald-lock-sha
tools_sha=$(sha256sum scripts/tools/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$tools_stamp" 2>/dev/null)" != "$tools_sha" ]; then
  log "installing wasm-opt (npm package binaryen, a few seconds)"
  (cd scripts/tools && npm ci --no-audit --no-fund --loglevel=error)
  echo "$tools_sha" > "$tools_stamp"
fi

# Herald's bundle tools (scripts/wasm-split): herald-wasm-split, the splitter cargo-leptos uses,
# without cargo-leptos; herald-gzip, which precompresses the release bundle with Zopfli.
split_sha=$(find scripts/wasm-split/Cargo.toml scripts/wasm-split/Cargo.lock scripts/wasm-split/src scripts/wasm-split/vendor -type f \
  | sort | xargs cat | sha256sum | cut -d' ' -f1)
split_stamp="$HOME/.cargo/.herald-wasm-split-sha"
if ! command -v herald-wasm-split >/dev/null || ! command -v herald-gzip >/dev/null \
  || [ "$(cat "$split_stamp" 2>/dev/null)" != "$split_sha" ]; then
  log "installing herald-wasm-split and herald-gzip (scripts/wasm-split, about 1 min, once)"
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-split" cargo install --quiet --locked --path scripts/wasm-split --root "$HOME/.cargo"
  echo "$split_sha" > "$split_stamp"
fi

if [ "$want_e2e" = 1 ]; then
  stamp=end2end/node_modules/.herald-lock-sha
  lock_sha=$(sha256sum end2end/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]; then
    log "installing Playwright (npm; the browser comes from Debian)"
    (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sha" > "$stamp"
  fi
  # schemathesis, for the API check (scripts/api-fuzz.sh): every package pinned.
  venv=scripts/tools/.venv
  req_sha=$(sha256sum scripts/tools/requirements-api-fuzz.txt | cut -d' ' -f1)
  if [ "$(cat "$venv/.herald-req-sha" 2>/dev/null)" != "$req_sha" ]; then
    log "installing schemathesis (PyPI, pinned; about 20 s)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/tools/requirements-api-fuzz.txt
    echo "$req_sha" > "$venv/.herald-req-sha"
  fi
  # The example receivers' libraries (examples/receivers), pinned.
  rx=examples/receivers
  rx_sha=$(cat $rx/python/requirements.txt $rx/node/package-lock.json | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$rx/.herald-deps-sha" 2>/dev/null)" != "$rx_sha" ]; then
    log "installing the example receivers' libraries (standardwebhooks from PyPI and npm; about 10 s)"
    python3 -m venv $rx/python/.venv
    $rx/python/.venv/bin/pip install --quiet --disable-pip-version-check -r $rx/python/requirements.txt
    (cd $rx/node && npm ci --no-audit --no-fund --loglevel=error)
    echo "$rx_sha" > "$rx/.herald-deps-sha"
  fi
  # Chromium for the browser tests; Prometheus and promtool for the metrics check.
  debs=()
  [ -x /usr/bin/chromium ] || debs+=(chromium)
  command -v promtool >/dev/null && command -v prometheus >/dev/null || debs+=(prometheus)
  if [ ${#debs[@]} -gt 0 ]; then
    log "installing ${debs[*]} from Debian (about 1 min)"
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  fi
fi
log "tools ready"
