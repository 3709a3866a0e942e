# shellcheck shell=bash
# Sourced by scripts/cluster.sh and scripts/crds.sh: `pin KEY` prints deploy/versions.yaml's value
# for KEY (flat `key: value` lines, quotes dropped) or dies naming the missing key. Needs ROOT and
# the caller's die().
pin() {
  awk -v k="$1" -F': ' '$1 == k { gsub(/"/, "", $2); print $2; found = 1 } END { exit !found }' \
    "$ROOT/deploy/versions.yaml" || die "$1 is missing from deploy/versions.yaml"
}
