#!/usr/bin/env bash
# Webhook benchmark: a typical Deployment AdmissionReview (3.6 kB) POSTed over TLS on
# loopback with keep-alive, the server pinned to one core and wrk to another.
#   1. paced at RATE reviews/s (default 2000) for DURATION: p50/p99 at that rate;
#   2. unpaced with CONNS connections: the highest sustained rate;
#   3. open loop at RATE reviews/s with oha (requests start on a fixed schedule and latency is
#      measured from when each was due, so a stall cannot hide by slowing the client down:
#      no coordinated omission);
#   4. peak RSS (VmHWM) of the server afterwards.
# wrk paces each connection with delay() (1000*CONNS/RATE ms after each answer), so the achieved
# rate is below RATE by the answer time: read the achieved Requests/sec, and raise RATE to reach
# a target. NICE (e.g. -10) gives the server priority over other work on a shared machine.
# Usage: bench/webhook/run.sh   (env: RATE, DURATION, CONNS, SERVER_CPU, CLIENT_CPU, ENDPOINT, NICE)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/release/ferrostack"
rate=${RATE:-2000}
duration=${DURATION:-30s}
conns=${CONNS:-10}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
endpoint=${ENDPOINT:-/validate}
port=${PORT:-18443}
metrics_port=$((port + 1))

"$root/scripts/tools.sh" apt wrk:wrk
oha="$root/.tools/bin/oha"
[ -x "$oha" ] || cargo install --locked --quiet oha --version 1.16.0 --root "$root/.tools"
[ -x "$bin" ] || cargo build --release --locked -p ferrostack --manifest-path "$root/Cargo.toml"

work=$(mktemp -d)
TOKIO_WORKER_THREADS=1 taskset -c "$server_cpu" ${NICE:+nice -n "$NICE"} "$bin" webhook serve --self-signed \
  --port "$port" --metrics-port "$metrics_port" --ca-file "$work/ca.pem" \
  --log-level warn --drain-delay 0s >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The answer must be a real allow for this review, over a verified TLS connection.
curl -fsS --cacert "$work/ca.pem" -H 'content-type: application/json' \
  --data-binary @"$here/deployment-review.json" "https://localhost:$port$endpoint" | grep -q '"allowed":true'

cd "$here"
echo "## paced: $rate reviews/s, $conns connections, $duration, $endpoint"
RATE=$rate CONNS=$conns taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$duration" --latency \
  -s review.lua "https://127.0.0.1:$port$endpoint"
echo "## unpaced: $conns connections, $duration, $endpoint"
RATE=0 CONNS=$conns taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$duration" --latency \
  -s review.lua "https://127.0.0.1:$port$endpoint"
echo "## open loop (oha, latency corrected): $rate reviews/s, $conns connections, $duration, $endpoint"
taskset -c "$client_cpu" "$oha" --no-tui --latency-correction -q "$rate" -c "$conns" -z "$duration" \
  --cacert "$work/ca.pem" -m POST -H 'content-type: application/json' -D "$here/deployment-review.json" \
  "https://localhost:$port$endpoint"
echo "## server memory"
grep -E 'VmHWM|VmRSS' "/proc/$pid/status"
echo "## server CPU time (utime+stime, clock ticks)"
awk '{print $14 + $15}' "/proc/$pid/stat"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -E '^ferrostack_webhook_reviews_total' || true
