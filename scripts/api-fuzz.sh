#!/usr/bin/env bash
# Checks that the JSON API does what its OpenAPI document says: schemathesis (PyPI, pinned in
# scripts/tools/requirements-api-fuzz.txt) generates requests from /api/v1/openapi.json, valid
# and invalid, against a live Herald on a fresh SQLite database, with every check it has
# (no 5xx, only declared status codes and content types, answers match their schemas, invalid
# input refused, valid input accepted, auth enforced). Bounded in time; fails on any failure.
# One worker: with two, hypothesis' source introspection (ast.parse in both threads) trips
# CPython 3.11's "AST constructor recursion depth mismatch" (gh-106905) now and then.
#   scripts/api-fuzz.sh BIN [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
budget=${2:-100}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export HERALD_DATABASE_URL="sqlite://$work/herald.db?mode=rwc" HERALD_LISTEN="127.0.0.1:$port" HERALD_LOG=warn
export HERALD_SITE_ROOT="$PWD/target/site" HERALD_ADMIN_EMAIL=fuzz@example.test
key=$("$bin" api-key create --name api-fuzz | tail -n1)
"$bin" serve >"$work/herald.log" 2>&1 &
herald=$!
trap 'kill $herald 2>/dev/null || true; wait $herald 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
# A delivery (to a port nothing listens on: it fails and can be retried).
call() { curl -fsS -X "$1" "http://127.0.0.1:$port/api/v1$2" -H "Authorization: Bearer $key" -H 'content-type: application/json' ${3:+-d "$3"}; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
webhook=$(call POST /webhooks '{"name":"fuzz","url":"http://127.0.0.1:9/","event_types":["*"]}' | json '["id"]')
call POST /events '{"type":"fuzz.created","payload":{}}' >/dev/null
export HERALD_FUZZ_DELIVERY_ID=$(call GET "/deliveries?webhook_id=$webhook" | json '["items"][0]["id"]')
scripts/tools/.venv/bin/st --config-file scripts/tools/schemathesis.toml run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all --max-time "$budget" --workers 1 --seed 18 --generation-database none \
  --no-color --output-truncate true --report-dir "$work/report" \
  || { echo "[api-fuzz] failures above; the server's log:" >&2; tail -n 40 "$work/herald.log" >&2; exit 1; }
