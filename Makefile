# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test rust-test lint fmt-check clippy build readme

test: lint rust-test test-health

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

# --- health ---
.PHONY: test-health
# The health checker's tests that need a real Alertmanager and headless Chromium: they are
# #[ignore]d in `cargo test` and run here, after the tools are installed. Under CI=true a
# missing tool fails them instead of skipping.
test-health:
	scripts/tools.sh apt prometheus-alertmanager:prometheus-alertmanager prometheus-pushgateway:prometheus-pushgateway chromium:chromium
	cargo test -p ferrostack-health --locked --test integration -- --ignored
