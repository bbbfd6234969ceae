#!/usr/bin/env bash
# How far behind the writer its followers are, on loopback (issue 18): for each of N
# commands recorded by the writer, the time from the writer's answer to the event reaching
#   1. a read replica on KurrentDB (the first ledger's own door stands in for KurrentDB):
#      its event feed (SSE), and
#   2. `tail` beside a `serve` on the embedded file log (the read-only follower).
# Prints p50, p99 and max per follower; a negative lag is an event the follower had before
# the writer's answer reached the client. Needs curl and python3. Not part of CI: the figures
# depend on the machine; run it by hand (N=500 by default: `N=2000 benches/replica-lag.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
cargo build --profile dist -p csp-ledger --quiet
B="$PWD/target/dist/csp-ledger"
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
K=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
A=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CSP_LEDGER_OPERATOR_KEY=$K CSP_LEDGER_STORE_ADMIN_KEY=$A RUST_LOG=warn

wait_line() { for _ in $(seq 100); do grep -q "$2" "$1" && return; sleep 0.1; done; echo "no '$2' in $1" >&2; exit 1; }

# The door: a ledger on the file log serving the KurrentDB protocol.
"$B" --data door serve --listen 127.0.0.1:0 --kurrentdb-listen 127.0.0.1:0 > door.out 2> door.err &
PIDS+=($!)
wait_line door.out "certificate authority"
DOOR=$(grep -o 'http://[0-9.:]*' door.out)
GRPC=$(sed -n 's/^csp-ledger kurrentdb protocol on //p' door.out)
CA=$(sed -n 's/^csp-ledger kurrentdb certificate authority //p' door.out)
URL="esdb://admin:$A@$GRPC?tls=true&tlsCaFile=$CA"
"$B" --data writer serve --listen 127.0.0.1:0 --store "$URL" > writer.out 2> writer.err &
PIDS+=($!)
wait_line writer.out listening
sleep 0.5 # the writer takes the lease first
"$B" --data replica serve --listen 127.0.0.1:0 --store "$URL" > replica.out 2> replica.err &
PIDS+=($!)
wait_line replica.out listening
WRITER=$(grep -o 'http://[0-9.:]*' writer.out)
REPLICA=$(grep -o 'http://[0-9.:]*' replica.out)

cat > lag.py <<'PY'
import json, os, subprocess, sys, threading, time, urllib.request, uuid

key, n = os.environ["CSP_LEDGER_OPERATOR_KEY"], int(os.environ["N"])
arrived, lock = {}, threading.Lock()

def follow(lines, position_of):
    for line in lines:
        position = position_of(line)
        if position is not None:
            with lock:
                arrived.setdefault(position, time.monotonic())

def sse(base):
    request = urllib.request.Request(f"{base}/v1/events", headers={"authorization": f"Bearer {key}"})
    response = urllib.request.urlopen(request)
    def position(line):
        line = line.decode().strip()
        return int(line[3:].strip()) if line.startswith("id:") else None
    threading.Thread(target=follow, args=(response, position), daemon=True).start()

def tail(binary, data):
    process = subprocess.Popen([binary, "--data", data, "--json", "tail", "--from", "end"], stdout=subprocess.PIPE)
    threading.Thread(target=follow, args=(process.stdout, lambda line: json.loads(line)["position"]), daemon=True).start()
    return process

def command(base, number):
    body = {"type": "onboard_provider", "tenant_id": str(uuid.uuid4()), "tenant_country": "US",
            "partner_number": str(number), "legal_name": f"Provider {number}", "countries_served": ["US"],
            "support": {"email": f"support@{number}.example", "phone": "+1 555 0100", "website": None},
            "first_admin": {"full_name": "Ada Admin", "email": f"ada@{number}.example"}}
    request = urllib.request.Request(f"{base}/v1/commands", data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    outcome = json.load(urllib.request.urlopen(request))
    return time.monotonic(), outcome["events"][-1]["position"]

def measure(name, writer, first_number):
    time.sleep(1)  # the follower is subscribed before the first command
    acked = [command(writer, first_number + i) for i in range(n)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if all(p in arrived for _, p in acked):
                break
        time.sleep(0.01)
    with lock:
        lags = sorted((arrived[p] - t) * 1000 for t, p in acked if p in arrived)
    missing = n - len(lags)
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{name}: {n} commands, lag p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {lags[-1]:.2f} ms"
          + (f", {missing} never arrived" if missing else ""))
    arrived.clear()

mode = sys.argv[1]
if mode == "replica":
    sse(sys.argv[3])
    measure("KurrentDB read replica (event feed)", sys.argv[2], 6000000)
else:
    follower = tail(sys.argv[3], sys.argv[4])
    measure("file log, tail beside serve", sys.argv[2], 7000000)
    follower.kill()
PY
N=$N python3 lag.py replica "$WRITER" "$REPLICA"

# The file log: tail beside the door's own serve.
N=$N python3 lag.py tail "$DOOR" "$B" door
