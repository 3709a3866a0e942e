# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test rust-test lint fmt-check clippy build readme

test: lint rust-test webhook-check-chart

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

# --- admission ---
.PHONY: webhook-check-chart fuzz bench-webhook
CHART := deploy/helm/ferrostack
FUZZ_SECONDS ?= 60

# The chart's rendered manifests must pass the webhook's own policies (skipped until the chart exists).
webhook-check-chart:
	@if [ ! -d $(CHART) ]; then echo "webhook-check-chart: no $(CHART) yet, skipped"; exit 0; fi; \
	scripts/tools.sh helm; \
	cargo build --locked -p ferrostack; \
	helm template ferrostack $(CHART) --namespace ferrostack | target/debug/ferrostack webhook check -

# libFuzzer targets over the review parser + policies and the offline checker (nightly; not in `make test`).
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	cd fuzz && cargo +nightly fuzz run review -- -max_total_time=$(FUZZ_SECONDS) corpus/review
	cd fuzz && cargo +nightly fuzz run check -- -max_total_time=$(FUZZ_SECONDS)

bench-webhook:
	bench/webhook/run.sh
