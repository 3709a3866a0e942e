#!/usr/bin/env bash
# The upstream CustomResourceDefinitions the chart and deploy/ use, taken from each project's own
# release (its Go module, through the Go module proxy) at the version deploy/versions.yaml pins,
# into .tools/crds/<project>/ (or DIR/<project>/). Nothing here is written by us, nothing upstream
# is committed: deploy/tests/cluster/test_crds.py applies them to the real API server.
#
#   scripts/crds.sh [DIR]
#
# Each module is fetched with `go mod download` (into the Go module cache; go checks its zip
# against sum.golang.org and only then records <version>.ziphash beside it) and only the CRD files
# are read out of that zip. The zip, not the extracted directory: go 1.26 refuses to extract a
# module whose go.mod asks for a newer go, after it has downloaded and verified the zip. A
# project whose files already match module@version is skipped (no network).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/.tools/crds}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# project  module  pin-key (deploy/versions.yaml)  paths in the module holding its CRD YAML
# karpenter: the AWS provider's pkg/apis/crds is what the pinned karpenter chart installs (the
# core module's NodePool/NodeClaim plus the AWS CEL rules and EC2NodeClass).
# traefik: the traefik.io CRDs Traefik's docs publish (the chart's crds/ carry the same kinds).
# calico: the operator.tigera.io CRDs (Installation, APIServer) are the Tigera operator's; the
# github.com/projectcalico/calico module is not served by the proxy.
PROJECTS="
prometheus-operator github.com/prometheus-operator/prometheus-operator prometheus_operator example/prometheus-operator-crd/
cert-manager        github.com/cert-manager/cert-manager              cert_manager_chart  deploy/crds/
karpenter           github.com/aws/karpenter-provider-aws             karpenter_chart     pkg/apis/crds/
eck                 github.com/elastic/cloud-on-k8s/v3                eck_operator_chart  config/crds/v1/all-crds.yaml
argo-rollouts       github.com/argoproj/argo-rollouts                 argo_rollouts       manifests/crds/
traefik             github.com/traefik/traefik/v3                     traefik             docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml
gateway-api         sigs.k8s.io/gateway-api                           gateway_api         config/crd/standard/
keda                github.com/kedacore/keda/v2                       keda_chart          config/crd/bases/
calico              github.com/tigera/operator                        tigera_operator     pkg/imports/crds/operator/
"

log() { printf '%s\n' "$*" >&2; }
die() { log "crds.sh: $*"; exit 1; }

# shellcheck source=scripts/pins.sh
source "$ROOT/scripts/pins.sh"

# extract ZIP PREFIX DEST PATH...: the YAML files under PATH (a directory ending in / or a file)
# that hold a CustomResourceDefinition, flat into DEST.
extract() {
  python3 - "$@" <<'EOF'
import pathlib, re, sys, zipfile
zip_path, prefix, dest, *paths = sys.argv[1:]
found = 0
with zipfile.ZipFile(zip_path) as z:
    for name in z.namelist():
        rel = name.removeprefix(prefix)
        inside = any(rel == p or (p.endswith("/") and rel.startswith(p) and "/" not in rel[len(p):])
                     for p in paths)
        if not inside or not rel.endswith((".yaml", ".yml")):
            continue
        text = z.read(name).decode()
        if re.search(r"^kind: CustomResourceDefinition$", text, re.M):
            (pathlib.Path(dest) / pathlib.PurePosixPath(rel).name).write_text(text)
            found += 1
if not found:
    sys.exit(f"no CRD under {paths} in {zip_path}")
EOF
}

# Calico's pin and the Tigera operator's: the operator release names the Calico it ships.
check_calico() {
  local zip=$1 prefix=$2 want got
  want=$(pin calico)
  got=$(unzip -p "$zip" "${prefix}config/calico_versions.yml" | awk '$1 == "title:" { print $2; exit }')
  [[ "$got" == "$want" ]] || die "tigera_operator ships Calico $got, deploy/versions.yaml pins calico $want"
}

# A chart's appVersion is the release whose CRDs we fetch: kube-prometheus-stack's is the
# Prometheus Operator, argo-rollouts' the Argo Rollouts controller, traefik's Traefik. Checked
# where `scripts/tools.sh charts` could pull the chart.
# check_app_version CHART_KEY PIN_KEY: fails when the pulled chart's appVersion differs from the pin.
check_app_version() {
  local key=$1 want=$2 name chart app
  name=${key//_/-}
  chart="$ROOT/.tools/charts/$name-$(pin "${key}_chart").tgz"
  [[ -f "$chart" ]] || return 0
  app=$(tar -xzOf "$chart" "$name/Chart.yaml" | awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }')
  [[ "$app" == "$(pin "$want")" ]] \
    || die "the $name chart ships $want $app, deploy/versions.yaml pins $(pin "$want")"
}

fetch_project() {
  local project=$1 module=$2 key=$3 version zip prefix dest stamp want start
  shift 3
  version="v$(pin "$key" | sed 's/^v//')"
  dest="$OUT/$project"
  stamp="$dest/.source"
  want="$module@$version $*"
  if [[ -f "$stamp" && $(cat "$stamp") == "$want" ]]; then
    printf '%-20s up to date (%s@%s)\n' "$project" "$module" "$version"
    return
  fi
  start=$SECONDS
  zip=$(module_zip "$module" "$version")
  prefix="$module@$version/"
  [[ $project != calico ]] || check_calico "$zip" "$prefix"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  extract "$zip" "$prefix" "$dest.tmp" "$@"
  printf '%s\n' "$want" > "$dest.tmp/.source"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  printf '%-20s %s files from %s@%s in %ss\n' "$project" "$(find "$dest" -name "*.y*ml" | wc -l)" "$module" "$version" \
    "$((SECONDS - start))"
}

command -v go >/dev/null || die "go is needed (the Go module proxy serves the upstream CRDs)"
mkdir -p "$OUT"
check_app_version kube_prometheus_stack prometheus_operator
check_app_version argo_rollouts argo_rollouts
check_app_version traefik traefik
while read -r project module key paths; do
  [[ -n "$project" ]] || continue
  # shellcheck disable=SC2086 # paths is a list
  fetch_project "$project" "$module" "$key" $paths
done <<< "$PROJECTS"
