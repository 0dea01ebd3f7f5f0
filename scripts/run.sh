#!/usr/bin/env bash
# Sets up, builds (release) and starts Herald on SQLite with the admin app on
# http://127.0.0.1:3000. HERALD_* variables already set are honoured, e.g.
#   HERALD_LISTEN=127.0.0.1:3001 HERALD_DATABASE_URL=sqlite://data/second.db?mode=rwc scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
bin=$(scripts/build.sh --release)
SAY_TAG=run
export HERALD_SITE_ROOT="${HERALD_SITE_ROOT:-$PWD/target/site}"
say "starting Herald: http://${HERALD_LISTEN:-127.0.0.1:3000}/ (on first start it prints the admin's password)"
exec "$bin" serve
