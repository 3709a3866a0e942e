# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test rust-test lint fmt-check clippy build readme

test: lint rust-test

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
