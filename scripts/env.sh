# Sourced by the other scripts: one place for the paths every build shares.
# scripts/tools/node_modules/.bin: wasm-opt from the npm registry (scripts/setup.sh installs it).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Outside the clone by default, so fresh clones on this machine (CI) build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald/target}"

# Progress on stderr, with the time since the outermost script started (scripts call each other).
export HERALD_T0="${HERALD_T0:-$(date +%s)}"
say() {
  local t=$(($(date +%s) - HERALD_T0))
  printf '[%s %d:%02d] %s\n' "${SAY_TAG:-herald}" $((t / 60)) $((t % 60)) "$*" >&2
}
# Whether this machine has built this profile before: the first build compiles every crate.
first_build() { [ ! -d "$CARGO_TARGET_DIR/$1" ]; }
