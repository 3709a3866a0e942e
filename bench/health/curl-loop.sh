#!/usr/bin/env bash
# The case study's health check (003 §9, health-check-script.sh): curl each URL in turn, compare
# the HTTP code with the expected one and append a line to the log. Timestamps use bash's
# printf builtin (no `date` fork), which only makes this baseline faster.
# Usage: curl-loop.sh URLS_FILE LOG_FILE
set -u
urls=$1 log=$2
while read -r url; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url")
  if [ "$code" = 200 ]; then result=PASS; else result=FAIL; fi
  printf '%(%Y-%m-%dT%H:%M:%S)T %s %s %s\n' -1 "$url" "$code" "$result" >> "$log"
done < "$urls"
