#!/usr/bin/env bash
# `make test`'s driver: runs each make target given as a suite, goes on after a failure, and ends
# with one line per suite (passed, failed, skipped, seconds), the reason of every skip, and a total.
# Exit 1 when any suite failed. Logs stay in .tools/results/<suite>.log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tools/results"
rm -rf "$out" && mkdir -p "$out"
for suite in "$@"; do
  start=$(date +%s)
  make --no-print-directory -C "$root" "$suite" 2>&1 | tee "$out/$suite.log"
  echo "$suite ${PIPESTATUS[0]} $(($(date +%s) - start))" >> "$out/status"
done
python3 "$root/scripts/suite_summary.py" "$out"
