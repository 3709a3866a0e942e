# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test rust-test lint fmt-check clippy build readme

test: lint rust-test test-platform

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: fmt-check clippy

build:
	cargo build --release --locked -p ferrostack

rust-test:
	cargo test --workspace --locked

# Regenerates the README's command-line reference from the binary.
readme:
	cargo build -q -p ferrostack
	python3 scripts/readme-cli.py target/debug/ferrostack README.md

# --- platform ---
# Observability, logging, cluster bootstrap, CI/CD, Ansible and autoscaling configuration
# (issue 7). `make test-platform` installs its tools, then runs every platform check.
PLATFORM_APT := prometheus:promtool prometheus-alertmanager:amtool shellcheck:shellcheck yamllint:yamllint curl:curl
.PHONY: platform-tools test-platform chart-assets

platform-tools:
	scripts/tools.sh apt $(PLATFORM_APT)
	scripts/tools.sh venv
	command -v kubectl >/dev/null || scripts/tools.sh helm   # kubectl kustomize for deploy/logging

test-platform: platform-tools
	deploy/tests/platform/check.sh
	.tools/venv/bin/pytest -q -p no:cacheprovider deploy/tests/platform

# The chart carries copies of the canonical rules and dashboards (CONTRACT.md "Assets shared").
chart-assets:
	mkdir -p deploy/helm/ferrostack/files/rules deploy/helm/ferrostack/files/dashboards
	rm -f deploy/helm/ferrostack/files/rules/*.yaml deploy/helm/ferrostack/files/dashboards/*.json
	cp deploy/observability/rules/*.yaml deploy/helm/ferrostack/files/rules/
	cp deploy/observability/dashboards/*.json deploy/helm/ferrostack/files/dashboards/
