# Sourced by the other scripts: one place for the paths every build shares.
# scripts/tools/node_modules/.bin: wasm-opt from the npm registry (scripts/setup.sh installs it).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Outside the clone by default, so fresh clones on this machine (CI) build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald/target}"
