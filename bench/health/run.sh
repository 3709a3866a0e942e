#!/usr/bin/env bash
# Benchmark (issue 4): one `ferrostack healthcheck run` over N local targets against the case
# study's sequential curl loop over the same targets. Wall time and peak RSS from
# /usr/bin/time -v; each side runs ROUNDS times, the median is reported.
# Targets: N paths (`/api?target=i`) spread over SERVERS local data-api processes (default 10;
# `--work-delay` does not apply to /api; `--log-level warn`: the fixture should not spend the
# shared CPUs on access logs), loopback only. With SERVERS=1 all N connections hit
# one listener at once and overflow its accept backlog (1024): the kernel drops SYNs and the
# client retries after 1 s, which measures the server's backlog, not the prober.
# Usage: [SERVERS=10] bench/health/run.sh [N] [ROUNDS]    (builds the release binary first)
set -euo pipefail
n=${1:-1000} rounds=${2:-5} servers=${SERVERS:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/ferrostack
work=$(mktemp -d)
trap 'kill ${server:-} 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$root" && cargo build --release --locked -q -p ferrostack)
ports=() pids=()
for s in $(seq "$servers"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" data-api --host 127.0.0.1 --port "$port" --log-dir "$work/logs" --drain-delay 0s \
    --log-level warn >/dev/null 2>&1 &
  pids+=($!) ports+=("$port")
done
server="${pids[*]}"
for port in "${ports[@]}"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
done
url() { echo "http://127.0.0.1:${ports[$(( $1 % servers ))]}/api?target=$1"; }
{ echo "targets:"; for i in $(seq "$n"); do echo "  - {name: t$i, url: '$(url "$i")'}"; done; } > "$work/targets.yaml"
for i in $(seq "$n"); do url "$i"; done > "$work/urls.txt"

measure() { # label, command...: prints "label wall_s rss_kb exit"
  local label=$1; shift
  /usr/bin/time -v -o "$work/time" "$@" >/dev/null 2>"$work/stderr" && rc=0 || rc=$?
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time" \
    | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  echo "$label $wall $rss $rc"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# $n targets on $servers servers, $rounds rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
: > "$work/results"
for r in $(seq "$rounds"); do
  rm -f "$work/history.jsonl" "$work/history.jsonl.lock" "$work/curl.log"
  measure ferrostack "$bin" healthcheck run --config "$work/targets.yaml" --history "$work/history.jsonl" | tee -a "$work/results"
  ok=$(grep -c '"success":true' "$work/history.jsonl")
  [ "$ok" = "$n" ] || { echo "ferrostack: only $ok of $n passed" >&2; exit 1; }
  measure curl-loop bash "$root/bench/health/curl-loop.sh" "$work/urls.txt" "$work/curl.log" | tee -a "$work/results"
  ok=$(grep -c ' PASS$' "$work/curl.log")
  [ "$ok" = "$n" ] || { echo "curl loop: only $ok of $n passed" >&2; exit 1; }
done
for label in ferrostack curl-loop; do
  wall=$(awk -v l=$label '$1==l {print $2}' "$work/results" | median)
  rss=$(awk -v l=$label '$1==l {print $3}' "$work/results" | median)
  echo "median $label wall_s=$wall peak_rss_kb=$rss"
done
f=$(awk '$1=="ferrostack" {print $2}' "$work/results" | median)
c=$(awk '$1=="curl-loop" {print $2}' "$work/results" | median)
awk -v f="$f" -v c="$c" 'BEGIN { printf "speedup %.1fx\n", c / f }'
