#!/usr/bin/env bash
# `make test-logship-faults`: logship's fault suite. kill -9 at every durability boundary
# (failpoints, `--features failpoints`), EIO at every boundary through faultfs (a FUSE
# passthrough, crates/faultfs) and a real ENOSPC on a small ext4 loop filesystem. Needs root,
# /dev/fuse and loop devices: without them one SKIP line, or a failure under CI=true.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
why=""
if [ "$(id -u)" -ne 0 ]; then why="not root (mount -o loop, FUSE mounts)"
elif [ ! -e /dev/fuse ]; then why="no /dev/fuse"
elif [ ! -e /dev/loop-control ]; then why="no loop devices (/dev/loop-control)"
fi
if [ -n "$why" ]; then
  if [ "${CI:-}" = true ]; then echo "test-logship-faults: $why (CI=true: failing)" >&2; exit 1; fi
  echo "SKIP test-logship-faults: $why"
  exit 0
fi
scripts/tools.sh apt e2fsprogs:mkfs.ext4 mount:mount
cargo build -q --locked -p ferrostack-faultfs
FAULTFS="$root/target/debug/faultfs" CI=true cargo test --locked -p ferrostack-logship \
  --features failpoints --test tests -- faults:: disk_faults:: full_disk:: --test-threads 2
