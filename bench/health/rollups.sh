#!/usr/bin/env bash
# Benchmark (issue 17): `healthcheck serve` over a year of rollups for N targets against the
# same N targets with an empty history, side by side in one run (release build). The year is
# written by the generator example `rollup_gen` (one result a minute per target for DAYS days:
# latencies log-normal around a per-target median, a few failing and degraded hours). For each
# side, ROUNDS times: the rollups file's size; the time from exec to the first 200 on /readyz;
# /api/status latency under load (wrk, CONNS connections for DURATION, p50/p99); peak RSS
# (VmHWM) after the load. Targets point at one local data-api with a 1 h interval, so each is
# probed once at start, as serve does. A third side, `full`, adds to the year a history of the
# last 50 results of every target (what the board keeps per target after 50 intervals, and
# `/api/status` returns), written just before each round. Medians over the rounds.
# Usage: bench/health/rollups.sh [N] [DAYS] [ROUNDS]    (builds the release binaries first)
set -euo pipefail
n=${1:-1000} days=${2:-365} rounds=${3:-3}
conns=${CONNS:-4} duration=${DURATION:-10s}
root=$(cd "$(dirname "$0")/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/ferrostack gen=$target_dir/release/examples/rollup_gen
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

"$root/scripts/tools.sh" apt wrk:wrk >/dev/null
(cd "$root" && cargo build --release --locked -q -p ferrostack \
  && cargo build --release --locked -q -p ferrostack-health --example rollup_gen)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(free_port)
"$bin" data-api --host 127.0.0.1 --port "$api" --log-dir "$work/logs" --drain-delay 0s \
  --log-level warn >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$api/readyz" >/dev/null && break; sleep 0.05; done
{ echo "targets:"
  for i in $(seq "$n"); do echo "  - {name: t$i, url: 'http://127.0.0.1:$api/', interval: 1h, slo: 99.9%}"; done
} > "$work/targets.yaml"
mkdir -p "$work/year" "$work/empty" "$work/full"
gen_start=$(date +%s%N)
"$gen" "$work/targets.yaml" "$work/year/history.jsonl" "$days"
gen_ms=$(( ($(date +%s%N) - gen_start) / 1000000 ))

run() { # label: prints "label rollups_bytes start_ms p50_ms p99_ms rps peak_rss_kb"
  local label=$1 dir=$work/$1 port
  port=$(free_port)
  local t0 t1
  t0=$(date +%s%N)
  "$bin" healthcheck serve --config "$work/targets.yaml" --history "$dir/history.jsonl" \
    --port "$port" --log-level warn >/dev/null 2>"$work/$label.err" &
  local pid=$!
  pids+=($pid)
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$label.err" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s%N)
  wrk -t1 -c"$conns" -d"$duration" --latency "http://127.0.0.1:$port/api/status" > "$work/wrk"
  local rss p50 p99 rps size
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  p50=$(awk '$1=="50%" {print $2}' "$work/wrk") p99=$(awk '$1=="99%" {print $2}' "$work/wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # As serve saved it (at start, after folding, and at shutdown).
  size=$(stat -c %s "$dir/history.jsonl.rollups")
  echo "$label $size $(( (t1 - t0) / 1000000 )) $(ms "$p50") $(ms "$p99") $rps $rss"
}
ms() { # wrk's "1.23ms" / "456.00us" / "1.02s" in ms
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.2f", v/1000; else if (v ~ /ms$/) printf "%.2f", v+0; else printf "%.2f", v*1000 }'
}
recent() { # N URL: the last 50 results (a minute apart, ending now) of targets t1..tN
  python3 - "$@" <<'PY'
import datetime, json, sys
n, url = int(sys.argv[1]), sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
for k in range(50, 0, -1):
    t = (now - datetime.timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(1, n + 1):
        print(json.dumps({"time": t, "target": f"t{i}", "url": url, "success": True,
                          "status": 200, "response_time_seconds": 0.012,
                          "duration_seconds": 0.013, "attempts": 1}))
PY
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# $n targets x $days days of rollups vs an empty history and vs the year with 50 recent results a target, $rounds rounds, wrk -c$conns -d$duration, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "# generator: ${gen_ms} ms, $(stat -c %s "$work/year/history.jsonl.rollups") bytes"
: > "$work/results"
for r in $(seq "$rounds"); do
  # Each round starts from the generated year (serve saves the rollups again at shutdown).
  [ "$r" = 1 ] && cp "$work/year/history.jsonl.rollups" "$work/year.rollups"
  cp "$work/year.rollups" "$work/year/history.jsonl.rollups"
  rm -f "$work/empty/"*
  run year | tee -a "$work/results"
  run empty | tee -a "$work/results"
  cp "$work/year.rollups" "$work/full/history.jsonl.rollups"
  recent "$n" "http://127.0.0.1:$api/" > "$work/full/history.jsonl"
  run full | tee -a "$work/results"
done
echo "label rollups_bytes start_ms status_p50_ms status_p99_ms status_rps peak_rss_kb (medians)"
for label in year empty full; do
  row=$label
  for col in 2 3 4 5 6 7; do row="$row $(awk -v l=$label -v c=$col '$1==l {print $c}' "$work/results" | median)"; done
  echo "$row"
done
