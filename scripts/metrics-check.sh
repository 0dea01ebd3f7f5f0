#!/usr/bin/env bash
# Checks Herald's metrics with Prometheus' own tools (Debian's `prometheus` package):
#  1. a live Herald delivers 5 events to a real receiver; `promtool check metrics` lints what
#     its /metrics serves;
#  2. `promtool check rules` and `promtool test rules` on docs/prometheus-alerts.yml;
#  3. a real Prometheus scrapes that Herald, and a query of sum(herald_deliveries_total)
#     returns 5.
#   scripts/metrics-check.sh BIN
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) rx_port=$(free_port) prom_port=$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "[metrics-check] $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }

# A receiver that answers 200 to every POST.
python3 - "$rx_port" >"$work/receiver.log" 2>&1 <<'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Ok(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
EOF
pids+=($!)

export HERALD_DATABASE_URL="sqlite://$work/herald.db?mode=rwc" HERALD_LISTEN="127.0.0.1:$port" HERALD_LOG=warn
export HERALD_SITE_ROOT="$PWD/target/site" HERALD_ADMIN_EMAIL=metrics@example.test
export HERALD_DESTINATION_ALLOWLIST=127.0.0.1
key=$("$bin" api-key create --name metrics-check | tail -n1)
"$bin" serve >"$work/herald.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$base/api/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 100); do curl -fsS -X POST "http://127.0.0.1:$rx_port/" -d '{}' >/dev/null 2>&1 && break; sleep 0.1; done
call() { curl -fsS -X "$1" "$base/api/v1$2" -H "Authorization: Bearer $key" -H 'content-type: application/json' -d "$3"; }
call POST /webhooks "{\"name\":\"metrics\",\"url\":\"http://127.0.0.1:$rx_port/hook\",\"event_types\":[\"metrics.*\"]}" >/dev/null
for n in 1 2 3 4 5; do call POST /events "{\"type\":\"metrics.checked\",\"payload\":{\"n\":$n}}" >/dev/null; done
delivered() { curl -fsS "$base/metrics" | awk '/^herald_deliveries_total/ {s += $NF} END {print s + 0}'; }
for _ in $(seq 100); do [ "$(delivered)" = 5 ] && break; sleep 0.1; done
[ "$(delivered)" = 5 ] || { curl -fsS "$base/metrics" | grep -E "^herald_(deliveries|webhook_)" >&2; fail "Herald did not count 5 deliveries (counted $(delivered))"; }

curl -fsS "$base/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics found problems in /metrics"
promtool check rules docs/prometheus-alerts.yml
promtool test rules docs/prometheus-alerts.test.yml

# A real Prometheus, scraping every second.
cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$PWD/docs/prometheus-alerts.yml"]
scrape_configs:
  - job_name: herald
    static_configs: [{targets: ["127.0.0.1:$port"]}]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
query() { curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")' 2>/dev/null; }
got=none
for _ in $(seq 150); do
  got=$(query 'sum(herald_deliveries_total{job="herald"})' || echo none)
  [ "$got" = 5 ] && break
  sleep 0.2
done
[ "$got" = 5 ] || fail "Prometheus' sum(herald_deliveries_total) is $got, not 5"
# Every query of the Grafana dashboard is one Prometheus accepts.
python3 - "$prom_port" docs/grafana-dashboard.json <<'EOF' || fail "a dashboard query is refused"
import json, sys, urllib.parse, urllib.request
port, path = sys.argv[1], sys.argv[2]
for panel in json.load(open(path))["panels"]:
    for target in panel["targets"]:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": target["expr"]})
        try:
            urllib.request.urlopen(url).read()
        except Exception as e:
            sys.exit(f"{panel['title']}: {target['expr']}: {e}")
EOF
echo "[metrics-check] promtool passed on /metrics and the alert rules; Prometheus scraped Herald: sum(herald_deliveries_total) = $got"
