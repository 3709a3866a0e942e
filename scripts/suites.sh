#!/usr/bin/env bash
# `make test`'s driver: runs each make target given as a suite, goes on after a failure, and ends
# with one line per suite (passed, failed, skipped, seconds), the reason of every skip, and a total.
# A suite written `NAME&` runs in the background (installing tools while lint compiles) until the
# word `wait`, which joins it and prints its log. Exit 1 when any suite failed. Logs stay in
# .tools/results/<suite>.log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tools/results"
rm -rf "$out" && mkdir -p "$out"

run() {   # run SUITE: the make target, its log, and its line in the status file
  local suite=$1 start rc
  start=$(date +%s)
  make --no-print-directory -C "$root" "$suite" 2>&1 | tee "$out/$suite.log"
  rc=${PIPESTATUS[0]}
  echo "$suite $rc $(($(date +%s) - start))" >> "$out/status"
  return "$rc"
}

background=()
for suite in "$@"; do
  case "$suite" in
    *'&') suite=${suite%&}
          echo "== $suite: in the background (log: .tools/results/$suite.log)"
          run "$suite" > /dev/null & background+=("$suite:$!") ;;
    wait) for job in "${background[@]}"; do
            wait "${job#*:}"
            echo "== ${job%%:*} (from the background)"; cat "$out/${job%%:*}.log"
          done
          background=() ;;
    *) run "$suite" ;;
  esac
done
python3 "$root/scripts/suite_summary.py" "$out"
