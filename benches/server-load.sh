#!/usr/bin/env bash
# Load figures of `csp-ledger serve` on loopback (issue 5): may-order queries per second and
# p99 with 64 connections, submit_order commands per second, and events per second to 10 SSE
# subscribers. Needs wrk (`apt-get install -y wrk`), curl and python3. Not part of CI: the
# figures depend on the machine; run it by hand and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --profile dist -p csp-ledger --quiet
B="$PWD/target/dist/csp-ledger"
WORK=$(mktemp -d)
trap 'kill -TERM ${SPID:-0} 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
K=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$B" --data data --json demo > demo.json
CSP_LEDGER_OPERATOR_KEY=$K RUST_LOG=warn "$B" --data data serve --listen 127.0.0.1:0 > serve.out 2> serve.err &
SPID=$!
for _ in $(seq 50); do grep -q http serve.out && break; sleep 0.1; done
P=$(grep -o 'http://[0-9.:]*' serve.out)
read -r NW CT AL SAM <<<"$(python3 -c "
import json;d=json.load(open('demo.json'))
p={o['name']:o for o in d['providers']+d['resellers']}
c={x['name']:x for x in d['customers']}
print(p['Northwind Distribution']['partner_id'], p['Contoso Cloud']['partner_id'], c['Alpine Ski House']['customer_id'], 'sam@northwinddistribution.example')")"
echo "may-order queries, 64 connections, 10 s:"
wrk -t2 -c64 -d10s --latency -H "authorization: Bearer $K" \
  "$P/v1/queries/may-order?provider=$NW&customer=$AL&reseller=$CT" | grep -E "Requests/sec|99%|50%|Non-2xx" || true
TOKEN=$(curl -s -X POST "$P/v1/auth/sign-in" -H 'content-type: application/json' \
  -d "{\"email\":\"$SAM\",\"password\":\"demo-password-2026\"}" | python3 -c "import json,sys;print(json.load(sys.stdin)['token'])")
cat > order.lua <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $TOKEN"
wrk.body = '{"type":"submit_order","provider_id":"$NW","customer_id":"$AL","reseller_id":"$CT","lines":[{"offer_id":"CFQ7TTC0LH18:0001","product_family":"azure","quantity":1}]}'
LUA
echo "submit_order commands (each fsynced), 64 connections, 10 s:"
wrk -t2 -c64 -d10s --latency -s order.lua "$P/v1/commands" | grep -E "Requests/sec|99%|50%|Non-2xx" || true
echo "10 SSE subscribers catching up from position 0 for 5 s (events delivered in total):"
for i in $(seq 10); do
  (timeout 5 curl -s -N "$P/v1/events?from=0" -H "authorization: Bearer $K" | grep -c '^id:' > "sse$i.count" || true) &
done
sleep 6
cat sse*.count | paste -sd+ | bc
