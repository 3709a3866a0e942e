#!/usr/bin/env bash
# Tool checks of the platform configuration (make test-platform runs this, then pytest):
# promtool (rules lint + unit tests), amtool (config + routing tree), shellcheck, yamllint,
# ansible-playbook --syntax-check and ansible-lint (production profile, offline).
set -euo pipefail
cd "$(dirname "$0")/../../.."
obs=deploy/observability
fail=0
step() { printf '\n== %s\n' "$*"; }
run() { "$@" || { echo "FAILED: $*" >&2; fail=1; }; }

step "promtool check rules (lint all, fatal)"
run promtool check rules --lint=all --lint-fatal "$obs"/rules/*.yaml

step "promtool test rules"
for t in "$obs"/tests/*_test.yaml; do run promtool test rules "$t"; done

step "amtool check-config (templates resolved from the repository)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed "s|/etc/alertmanager/config/|$PWD/$obs/alertmanager/|" "$obs/alertmanager/alertmanager.yaml" > "$tmp/alertmanager.yaml"
run amtool check-config "$tmp/alertmanager.yaml"
run amtool check-config "$obs/alertmanager/alertmanager.yaml"

step "amtool config routes test (who gets paged)"
while IFS='|' read -r want labels; do
  case "$want" in ''|'#'*) continue ;; esac
  want=$(echo "$want" | xargs)
  # shellcheck disable=SC2086  # labels are whitespace-separated on purpose
  got=$(amtool config routes test --config.file="$obs/alertmanager/alertmanager.yaml" $labels 2>/dev/null || true)
  if [ "$got" = "$want" ]; then echo "ok   $labels -> $got"
  else echo "FAIL $labels -> got '$got', want '$want'" >&2; fail=1; fi
done < "$obs/alertmanager/routes-test.txt"

step "shellcheck"
mapfile -t scripts < <(git ls-files -co --exclude-standard -- 'deploy/*.sh' 'scripts/*.sh' | sort -u)
run shellcheck -x "${scripts[@]}"

step "yamllint (.yamllint)"
run yamllint --strict -c .yamllint deploy .yamllint

if [ -d deploy/ansible ]; then
  step "ansible-playbook --syntax-check"
  (
    cd deploy/ansible
    export ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_LOCAL_TEMP="$tmp/ansible-local" ANSIBLE_REMOTE_TEMP="$tmp/ansible-remote"
    for pb in playbooks/*.yml; do
      ansible-playbook --syntax-check -i inventory/hosts.yml "$pb" || exit 1
    done
  ) || fail=1
  step "ansible-lint (production profile, offline)"
  (cd deploy/ansible && ANSIBLE_CONFIG="$PWD/ansible.cfg" ansible-lint --offline --profile production -q) || fail=1
fi

if [ "$fail" -ne 0 ]; then echo "platform checks: FAILED" >&2; exit 1; fi
echo "platform checks: all passed"
