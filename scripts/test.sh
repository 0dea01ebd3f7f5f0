#!/usr/bin/env bash
# Sets up and runs every test: Rust unit and integration tests (each database test on SQLite
# and on PostgreSQL), schemathesis against the API, the metrics with Prometheus' own tools, the
# example receivers, a benchmark smoke run, then the Playwright tests in Chromium against a freshly started server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SAY_TAG=test
scripts/setup.sh --e2e

# PostgreSQL runs on these machines; start it if it was stopped.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

cold=0
first_build debug && cold=1
if [ $cold = 1 ]; then
  say "formatting and lints (the first build on this machine compiles every crate: about 4 min)"
else
  say "formatting and lints"
fi
cargo fmt --all --check
cargo clippy --locked -p app -p herald-server -p migration -p herald-receiver-example --all-targets -- -D warnings

if [ $cold = 1 ]; then
  say "Rust tests, SQLite and PostgreSQL (building them the first time: about 4 min; running them: about 1.5 min)"
else
  say "Rust tests, SQLite and PostgreSQL (about 1.5 min)"
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked -p app -p herald-server -p migration --no-fail-fast
else
  cargo test --locked -p app -p herald-server -p migration --no-fail-fast
fi

# The browser tests run the optimised bundle, as users download it (wasm-opt and the
# precompressed files included); the server is a dev build, quicker to build.
bin=$(scripts/build.sh --release-site)

say "API against its OpenAPI document (schemathesis, about 2 min)"
scripts/api-fuzz.sh "$bin" 100

say "metrics: promtool on /metrics and the alert rules, a real Prometheus scraping Herald"
scripts/metrics-check.sh "$bin"

say "example receivers (Python, Node.js, Rust) against a live Herald"
cargo build --locked -p herald-receiver-example
HERALD_RECEIVER_RUST="$CARGO_TARGET_DIR/debug/herald-receiver-example" \
  python3 examples/receivers/check.py "$bin" python node rust

# The benchmarks, small, so they keep working (the real runs are in BENCHMARKS.md).
say "benchmark smoke run"
cargo build --locked -p herald-server --bin herald-bench
"$CARGO_TARGET_DIR/debug/herald-bench" delivery --events 200 --rate 50 --duration 2 --herald "$bin"
"$CARGO_TARGET_DIR/debug/herald-bench" log-query --attempts 20000 --webhooks 20 --runs 3
"$CARGO_TARGET_DIR/debug/herald-bench" bundle

say "browser tests (Playwright in Chromium, about 30 s)"
cd end2end
HERALD_BIN="$bin" npx playwright test
say "every test passed"
