#!/usr/bin/env bash
# The official Pod Security Admission conformance fixtures: test/testdata of the Go module
# k8s.io/pod-security-admission at the staging version of the Kubernetes release deploy/versions.yaml
# pins (kubernetes v1.X.Y -> v0.X.Y), taken from the module's verified zip (through the Go module
# proxy) into .tools/psa-fixtures/ (or DIR): <level>/v1.N/{pass,fail}/*.yaml, one Pod each. Nothing
# here is written by us and nothing is committed; crates/admission/tests/pod_security.rs runs
# every fixture through the webhook's pod-security policy.
#
#   scripts/psa-fixtures.sh [DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/.tools/psa-fixtures}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
log() { printf '%s\n' "$*" >&2; }
die() { log "psa-fixtures.sh: $*"; exit 1; }
# shellcheck source=scripts/pins.sh
source "$ROOT/scripts/pins.sh"

module=k8s.io/pod-security-admission
version="v0.$(pin kubernetes | sed 's/^v1\.//')"
want="$module@$version"
if [[ -f "$OUT/.source" && $(cat "$OUT/.source") == "$want" ]]; then
  printf 'psa-fixtures up to date (%s)\n' "$want"
  exit 0
fi
command -v go >/dev/null || die "go is needed to download $want through the Go module proxy"
zip=$(module_zip "$module" "$version")
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
python3 - "$zip" "$want/test/testdata/" "$OUT.tmp" <<'PY'
import pathlib, sys, zipfile
zip_path, prefix, dest = sys.argv[1:]
count = 0
with zipfile.ZipFile(zip_path) as z:
    for name in z.namelist():
        rel = name.removeprefix(prefix)
        if rel == name or not rel.endswith(".yaml"):
            continue
        out = pathlib.Path(dest) / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(z.read(name))
        count += 1
if count == 0:
    sys.exit(f"no fixtures under {prefix} in {zip_path}")
print(f"psa-fixtures {count} fixtures from {prefix.split('/test/')[0]}")
PY
printf '%s\n' "$want" > "$OUT.tmp/.source"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
