# Sourced by the other scripts: one place for the paths every build shares.
export PATH="$HOME/.cargo/bin:$PATH"
# Outside the clone by default, so fresh clones on this machine (CI) build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald/target}"
