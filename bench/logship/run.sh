#!/usr/bin/env bash
# logship benchmark (see README in this directory): writer vs a plain buffered write of the same
# 200-byte JSON lines, shipper vs the `zstd -3` CLI (one thread) on the same 1 GiB of sealed
# segments, and peak RSS of the shipper while it ships that 1 GiB. Writes results.md here.
# MIB=… changes the data size. Then the restart with a backlog: BACKLOG_FILES (100,000) files
# of BACKLOG_KIB (105 KiB, 10 GiB in all) pending when the shipper starts, against a start with
# one such file, side by side: time to the first stored object and peak RSS while draining.
# BACKLOG_FILES=0 skips it. Data lives in a temp dir that is deleted afterwards. Generated data
# is written back (`sync`) before it is measured: the shipper fsyncs what it stores, the zstd CLI
# does not, and without it the shipper's first fsyncs wait behind gigabytes of the generator's
# dirty pages, which logs written over time (the kernel writes them back within 30 s) never do.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/logship"
mib=${MIB:-1024}
writer_mib=${WRITER_MIB:-512}
command -v zstd >/dev/null || { echo "bench: zstd missing (scripts/tools.sh apt zstd:zstd)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (scripts/tools.sh apt time)" >&2; exit 1; }
cargo build --release --locked -p ferrostack-logship --example logship-bench
bin="$root/target/release/examples/logship-bench"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/logship-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The writer comparison runs on tmpfs when there is one: it measures the writer's own cost
# over a plain buffered write, not the disk's writeback (which swings both on a shared VM).
wdir="$tmp/w"; [ -d /dev/shm ] && wdir=$(mktemp -d /dev/shm/logship-bench.XXXXXX)
echo "== writer ($writer_mib MiB, in $wdir)"
writer=$("$bin" writer "$wdir" "$writer_mib")
echo "$writer"
rm -rf "$wdir"

echo "== generating $mib MiB of sealed segments"
"$bin" gen "$tmp/src" "$mib"
sync
bytes=$(du -sb "$tmp/src" | cut -f1)

echo "== zstd -3 -T1 on the same files"
start=$(date +%s.%N)
zstd -3 -T1 -q -c "$tmp"/src/*.jsonl > "$tmp/all.zst"
end=$(date +%s.%N)
zbytes=$(stat -c %s "$tmp/all.zst"); rm -f "$tmp/all.zst"
zstd_rate=$(echo "$bytes $start $end" | awk '{printf "%.1f", $1/1048576/($3-$2)}')
echo "zstd: $zstd_rate MiB/s (ratio $(echo "$bytes $zbytes" | awk '{printf "%.2f", $1/$2}'))"
# For reference only: -T1 compresses on a worker thread beside the reading and writing thread;
# --single-thread does all of it on one, as the shipper's encoder does.
start=$(date +%s.%N)
zstd -3 --single-thread -q -c "$tmp"/src/*.jsonl > /dev/null
end=$(date +%s.%N)
zstd1_rate=$(echo "$bytes $start $end" | awk '{printf "%.1f", $1/1048576/($3-$2)}')
echo "zstd --single-thread: $zstd1_rate MiB/s"

echo "== shipper (file:// archive) under /usr/bin/time -v"
/usr/bin/time -v "$bin" ship "$tmp/src" "$tmp/state" "$tmp/archive" > "$tmp/ship.out" 2> "$tmp/time.txt"
ship=$(cat "$tmp/ship.out"); echo "$ship"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt")
cpu=$(awk -F': ' '/Percent of CPU this job got/ {print $2}' "$tmp/time.txt")
ship_rate=$(echo "$ship" | sed -n 's/.*= \([0-9.]*\) MiB\/s.*/\1/p')
writer_ratio=$(echo "$writer" | sed -n 's/.*ratio \([0-9.]*\).*/\1/p')
ship_ratio=$(echo "$ship_rate $zstd_rate" | awk '{printf "%.2f", $1/$2}')
rss_mb=$(echo "$rss_kb" | awk '{printf "%.1f", $1/1024}')
rm -rf "$tmp/src" "$tmp/state" "$tmp/archive"

# One shipper start on a source of $1 files of $backlog_kib KiB: "first-object-seconds peak-rss-MB listed".
backlog_files=${BACKLOG_FILES:-100000}
backlog_kib=${BACKLOG_KIB:-105}
start_with() {
  local n=$1 d="$tmp/backlog-$1"
  "$bin" backlog "$d/src" "$n" "$backlog_kib"
  sync
  /usr/bin/time -v "$bin" ship "$d/src" "$d/state" "$d/archive" > "$d/ship.out" 2> "$d/time.txt"
  echo "start with $n pending: $(cat "$d/ship.out")" >&2
  local first rss listed
  first=$(sed -n 's/.*first object after \([0-9.]*\)s.*/\1/p' "$d/ship.out")
  listed=$(sed -n 's/.*at most \([0-9]*\) files listed.*/\1/p' "$d/ship.out")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$d/time.txt")
  rm -rf "$d"
  echo "$first $rss $listed"
}
backlog_rows=""
if [ "$backlog_files" -gt 0 ]; then
  echo "== restart: 1 file pending, then $backlog_files files of $backlog_kib KiB"
  read -r first0 rss0 listed0 <<< "$(start_with 1)"
  read -r first1 rss1 listed1 <<< "$(start_with "$backlog_files")"
  gib=$(echo "$backlog_files $backlog_kib" | awk '{printf "%.1f", $1*$2/1048576}')
  backlog_rows="| restart with $backlog_files files ($gib GiB) pending vs with 1 file, same run: time to the first stored object | backlog ${first1} s, 1 file ${first0} s | ≤ 1 s | $(echo "$first1" | awk '{print ($1<=1)?"yes":"no"}') |
| peak RSS while draining that backlog vs the 1-file start (most files a listing kept in memory) | backlog $rss1 MB ($listed1 files), 1 file $rss0 MB ($listed0 files) | ≤ 64 MB | $(echo "$rss1" | awk '{print ($1<=64)?"yes":"no"}') |"
fi

cat > "$here/results.md" <<MD
# logship benchmark results

Run: $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/logship/run.sh; $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
load average before: $load_before (the machine is shared with other builds; numbers vary ±30 %).
Release build, page cache warm (the data was just written, then synced), archive on the same disk (file://).

| measurement | result | target | holds |
|---|---|---|---|
| writer vs plain 64 KiB BufWriter, 200-byte JSON lines, $writer_mib MiB, best of 2 rounds, $( [ -d /dev/shm ] && echo tmpfs || echo disk) | $writer | writer ≥ 70 % of plain | $(echo "$writer_ratio" | awk '{print ($1>=0.7)?"yes":"no"}') ($writer_ratio) |
| shipper (zstd level 3, journal + fsyncs, file:// store) vs \`zstd -3 -T1\` CLI on the same $mib MiB | shipper $ship_rate MiB/s, zstd CLI $zstd_rate MiB/s (\`--single-thread\` $zstd1_rate MiB/s, for reference) | shipper ≥ 70 % of zstd | $(echo "$ship_ratio" | awk '{print ($1>=0.7)?"yes":"no"}') ($ship_ratio) |
| peak RSS of the shipper process while shipping $mib MiB | $rss_mb MB (CPU $cpu) | ≤ 64 MB | $(echo "$rss_mb" | awk '{print ($1<=64)?"yes":"no"}') |
$backlog_rows

Shipper output: \`$ship\`
MD
cat "$here/results.md"
