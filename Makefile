# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test rust-test lint fmt-check clippy build tools

test: lint test-logship rust-test

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: fmt-check clippy

build:
	cargo build --release --locked -p ferrostack

rust-test:
	cargo test --workspace --locked --exclude ferrostack-logship

# --- logship ---
.PHONY: test-logship bench-logship
# Integration tests start moto_server (S3 API) from the venv; under CI=true a missing moto fails.
test-logship:
	scripts/tools.sh venv
	MOTO_SERVER=$(CURDIR)/.tools/venv/bin/moto_server cargo test --locked -p ferrostack-logship

bench-logship:
	scripts/tools.sh apt zstd:zstd time:/usr/bin/time
	bench/logship/run.sh
