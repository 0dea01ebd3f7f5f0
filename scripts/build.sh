#!/usr/bin/env bash
# Builds Herald: the WASM bundle (wasm-bindgen, and wasm-opt for release), the stylesheet and
# static files into target/site, then the `herald` binary.
#   scripts/build.sh                 dev build: quickest to rebuild
#   scripts/build.sh --release       optimised bundle and server (what `scripts/run.sh` serves)
#   scripts/build.sh --release-site  optimised bundle, dev server: what the tests use, so the
#                                    browser tests run the bundle users download
# Prints the path of the built binary on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

release_site=0 release_server=0
case "${1:-}" in
  --release) release_site=1 release_server=1 ;;
  --release-site) release_site=1 ;;
  "") ;;
  *) echo "usage: scripts/build.sh [--release | --release-site]" >&2; exit 2 ;;
esac
site=target/site
mkdir -p "$site"
SAY_TAG=build

if [ $release_site = 1 ]; then
  if first_build wasm32-unknown-unknown/wasm-release; then
    say "building the browser bundle (first build on this machine: about 1.5 min; then seconds)"
  else
    say "building the browser bundle"
  fi
  cargo build --locked -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
else
  say "building the browser bundle (dev)"
  cargo build --locked -p frontend --lib --target wasm32-unknown-unknown
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/debug/frontend.wasm"
fi
# Split at the lazy routes (the pages loaded on demand, app/src/lib.rs) into pkg/: herald.wasm,
# the chunks, the loader module and the manifest the server reads for preload links.
rm -rf "$site/pkg" && mkdir -p "$site/pkg"
herald-wasm-split "$wasm" "$site/pkg" herald
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$site/pkg" --out-name herald "$site/pkg/herald.wasm"
rm "$site/pkg/herald.wasm"
if [ $release_site = 1 ]; then
  say "optimising the bundle (wasm-opt, about 30 s)"
  # --flatten --rereloop before -Oz rebuilds each function's control flow from scratch, which
  # the size passes then shrink further: 1% smaller gzipped than -Oz alone (BENCHMARKS.md).
  for f in "$site"/pkg/*.wasm; do
    wasm-opt --flatten --rereloop -Oz -Oz \
      --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext "$f" -o "$f"
  done
fi
cp style/main.css "$site/pkg/herald.css"
cp public/* "$site/"
if [ $release_site = 1 ]; then
  # Served as-is to browsers that accept gzip (tower-http's precompressed files); herald-gzip
  # (scripts/wasm-split) compresses with Zopfli, 4-5% smaller than gzip -9.
  herald-gzip "$site"/pkg/*.wasm "$site"/pkg/*.js "$site/pkg/herald.css"
  printf 'WASM main module: %s bytes gzipped (each page: herald-bench bundle)\n' \
    "$(stat -c %s "$site/pkg/herald_bg.wasm.gz")" >&2
fi
if [ $release_server = 1 ]; then
  if first_build release; then
    say "building the server (release; first build on this machine: about 5 min)"
  else
    say "building the server (release)"
  fi
  cargo build --locked -p herald-server --bin herald --release
  echo "$CARGO_TARGET_DIR/release/herald"
else
  say "building the server (dev)"
  cargo build --locked -p herald-server --bin herald
  echo "$CARGO_TARGET_DIR/debug/herald"
fi
