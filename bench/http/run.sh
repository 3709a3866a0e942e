#!/usr/bin/env bash
# bench/http: ferrostack against a bare hyper server (the limit) and the case studies' Flask
# services under gunicorn (the baseline), with one wrk command for all, client and server
# pinned to different cores. Writes bench/http/results.md. Run: bench/http/run.sh [--quick]
# (or --disk-rows N: only the 5,000-connection disk row, N times, to see how much it varies)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
scripts/tools.sh apt wrk:wrk
scripts/tools.sh venv
cargo build --release --locked -q -p ferrostack -p bench-hyper-hello
exec .tools/venv/bin/python bench/http/run.py "$@"
