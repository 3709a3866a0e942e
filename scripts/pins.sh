# shellcheck shell=bash
# Sourced by scripts/cluster.sh, crds.sh and psa-fixtures.sh: `pin KEY` prints deploy/versions.yaml's
# value for KEY (flat `key: value` lines, quotes dropped) or dies naming the missing key;
# `module_zip MODULE VERSION` prints the path of a Go module's verified zip. Needs ROOT and the
# caller's die().
pin() {
  awk -v k="$1" -F': ' '$1 == k { gsub(/"/, "", $2); print $2; found = 1 } END { exit !found }' \
    "$ROOT/deploy/versions.yaml" || die "$1 is missing from deploy/versions.yaml"
}

# The verified zip of module@version in the Go module cache (downloaded if needed).
module_zip() {
  local module=$1 version=$2 json zip tmp
  tmp=$(mktemp -d)
  # outside any go.mod; a non-zero exit is fine when the zip is there ("requires go >= ...")
  json=$(cd "$tmp" && go mod download -json "$module@$version" 2>&1) || true
  rmdir "$tmp"
  zip=$(sed -n 's/^\t"Zip": "\(.*\)",$/\1/p' <<< "$json")
  [[ -n "$zip" && -f "$zip" && -f "${zip%.zip}.ziphash" ]] || die "go mod download $module@$version: $json"
  printf '%s\n' "$zip"
}
