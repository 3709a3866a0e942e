# ferrostack: `make test` installs what it needs and runs every suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

.PHONY: test tools rust-test lint fmt-check clippy build readme

# Lint while the tools install and the control plane builds from its Go modules (both in the
# background), then one `cargo test` over the whole workspace (one feature resolution, so one
# build of the dependencies, the #[ignore]d tests that need those tools included), then the chart,
# platform and cluster suites. scripts/suites.sh runs each on after a failure and ends with one
# line per suite (passed, failed, skipped, every skip's reason) and a total; exit 1 if any failed.
SUITES := tools\& cluster-tools\& lint wait rust-test test-logship-faults test-chart test-platform test-cluster
test:
	scripts/suites.sh $(SUITES)

HEALTH_APT := prometheus-alertmanager:prometheus-alertmanager prometheus-pushgateway:prometheus-pushgateway chromium:chromium dnsmasq-base:dnsmasq

tools: chart-tools platform-tools logship-tools psa-fixtures
	scripts/tools.sh apt $(HEALTH_APT)

# The official Pod Security Admission fixtures (Go module k8s.io/pod-security-admission at the
# pinned Kubernetes release) into .tools/psa-fixtures, for crates/admission/tests/pod_security.rs.
.PHONY: psa-fixtures
psa-fixtures:
	scripts/psa-fixtures.sh

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: fmt-check clippy

build:
	cargo build --release --locked -p ferrostack

# CI=true: `tools` installed every tool first, so a test whose tool is still missing fails
# instead of skipping silently.
rust-test:
	CI=true MOTO_SERVER=$(CURDIR)/.tools/venv/bin/moto_server cargo test --workspace --locked -- --include-ignored

# Regenerates the README's command-line reference from the binary.
readme:
	cargo build -q -p ferrostack
	python3 scripts/readme-cli.py "$$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/ferrostack" README.md

# --- admission ---
.PHONY: fuzz bench-webhook
FUZZ_SECONDS ?= 60

# libFuzzer targets over the review parser + policies and the offline checker (nightly; not in
# `make test`), each for FUZZ_SECONDS, seeded with the benchmark's Deployment review and its object.
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	mkdir -p fuzz/corpus/review fuzz/corpus/check
	cp bench/webhook/deployment-review.json fuzz/corpus/review/deployment-review.json
	python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["request"]["object"], indent=1))' \
	  < bench/webhook/deployment-review.json > fuzz/corpus/check/deployment.json
	cd fuzz && cargo +nightly fuzz run review -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && cargo +nightly fuzz run check -- -max_total_time=$(FUZZ_SECONDS)

# TLS loopback benchmark of a typical Deployment review (wrk; results in bench/webhook/results.md).
bench-webhook:
	cargo build --release --locked -p ferrostack
	bench/webhook/run.sh

# --- chart ---
# Helm chart deploy/helm/ferrostack and the image, proven offline (deploy/tests/chart): helm lint
# + template for every profile, kubernetes-validate --strict (1.31, 1.35), checkov,
# custom-resource cross-references (shapes: test-cluster), linter rules as tests, `ferrostack webhook check` on each profile,
# workflow schemas, hadolint, the build context, and every role run on a read-only root
# (needs root for its mount namespace, as `make test` has for apt).
CHART := deploy/helm/ferrostack
CHART_PROFILES := default full kind
CHART_OUT := .tools/chart

.PHONY: test-chart chart-tools chart-render chart-webhook-check

chart-tools:
	scripts/tools.sh helm
	scripts/tools.sh venv
	scripts/tools.sh sarif
	scripts/tools.sh apt prometheus:promtool

test-chart: chart-tools
	cargo build -q --locked -p ferrostack
	.tools/venv/bin/pytest -q -rs -p no:cacheprovider deploy/tests/chart

chart-render: chart-tools
	mkdir -p $(CHART_OUT)
	for p in $(CHART_PROFILES); do \
	  f=""; [ "$$p" = default ] || f="-f $(CHART)/ci/$$p-values.yaml"; \
	  helm template fs $(CHART) --namespace dev $$f > $(CHART_OUT)/$$p.yaml; \
	done

# The renders and their `ferrostack webhook check` findings (warnings included) to read by eye;
# test_webhook_check.py asserts the same in `make test-chart`.
chart-webhook-check: chart-render
	for p in $(CHART_PROFILES); do \
	  echo "webhook check: $$p"; \
	  cargo run -q --locked -p ferrostack -- webhook check $(CHART_OUT)/$$p.yaml; \
	done

# --- platform ---
# Observability, logging, cluster bootstrap, CI/CD, Ansible and autoscaling configuration
# (issue 7). `make test-platform` installs its tools, then runs every platform check.
PLATFORM_APT := prometheus:promtool prometheus-alertmanager:amtool shellcheck:shellcheck yamllint:yamllint curl:curl \
	ruby:ruby
.PHONY: platform-tools test-platform chart-assets

# helm renders deploy/logging/stack; `charts` pulls the upstream charts deploy/versions.yaml pins
# into .tools/charts where the chart repositories are reachable (their tests skip where not;
# REQUIRE_UPSTREAM_CHARTS=1 makes that fail). ruby runs the kubeadm Vagrantfile with a stub.
platform-tools:
	scripts/tools.sh apt $(PLATFORM_APT)
	scripts/tools.sh venv
	scripts/tools.sh helm
	scripts/tools.sh charts

test-platform: platform-tools
	deploy/tests/platform/check.sh
	.tools/venv/bin/pytest -q -rs -p no:cacheprovider deploy/tests/platform

# The chart carries copies of the canonical rules and dashboards in deploy/observability (helm
# cannot read files outside the chart); a chart test fails when a copy differs.
chart-assets:
	mkdir -p deploy/helm/ferrostack/files/rules deploy/helm/ferrostack/files/dashboards
	rm -f deploy/helm/ferrostack/files/rules/*.yaml deploy/helm/ferrostack/files/dashboards/*.json
	cp deploy/observability/rules/*.yaml deploy/helm/ferrostack/files/rules/
	cp deploy/observability/dashboards/*.json deploy/helm/ferrostack/files/dashboards/

# --- health ---
.PHONY: test-health
# The health checker's tests that need a real Alertmanager, Pushgateway and headless
# Chromium: they are #[ignore]d in `cargo test` and run here, after the tools are installed.
# CI=true: a tool that is still missing fails its test instead of skipping it silently.
test-health:
	scripts/tools.sh apt $(HEALTH_APT)
	CI=true cargo test -p ferrostack-health --locked --test integration -- --ignored

# --- logship ---
.PHONY: test-logship bench-logship logship-tools
# Integration tests start moto_server (S3 API) from the venv and Azurite (Azure Blob, npm) from
# .tools/bin; under CI=true a missing one fails. `make test` runs them inside rust-test; these
# targets run one crate's suite alone.
logship-tools:
	scripts/tools.sh venv
	scripts/tools.sh azurite

test-logship: logship-tools
	CI=true MOTO_SERVER=$(CURDIR)/.tools/venv/bin/moto_server cargo test --locked -p ferrostack-logship -p ferrostack-logfile

bench-logship:
	scripts/tools.sh apt zstd:zstd time:/usr/bin/time
	bench/logship/run.sh

# The fault suite (README "Disk faults"): kill -9 at every durability boundary (failpoints build),
# EIO at each through faultfs (FUSE), ENOSPC on a small ext4 loop filesystem. Root only; one
# SKIP line elsewhere, a failure under CI=true.
.PHONY: test-logship-faults
test-logship-faults:
	scripts/logship-faults.sh

# --- control plane built from Go modules (README: "A real control plane on this machine") ---
.PHONY: cluster-tools cluster-up cluster-down
# Official etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok built
# from deploy/cluster/go.mod into .tools/k8s/bin (a binary whose inputs are unchanged is skipped);
# with the upstream CRDs (scripts/crds.sh); cluster-up starts them on loopback with three KWOK
# nodes, state and logs in .tools/cluster.
CLUSTER_DIR := $(CURDIR)/.tools/cluster
cluster-tools:
	scripts/cluster.sh build
	scripts/crds.sh

cluster-up: cluster-tools
	@kubeconfig=$$(scripts/cluster.sh up $(CLUSTER_DIR)); \
	  echo "kubeconfig: $$kubeconfig"; echo "export KUBECONFIG=$$kubeconfig"

cluster-down:
	scripts/cluster.sh down $(CLUSTER_DIR)

# The upstream CRDs the chart and deploy/ use, read out of each project's Go module at the
# version deploy/versions.yaml pins into .tools/crds/<project> (skipped when already there).
.PHONY: crds
crds:
	scripts/crds.sh

# The chart, the webhook and the case studies' scheduling rules against that control plane
# (deploy/tests/cluster): one control plane per run, stopped at the end; component logs are kept
# in .tools/results/cluster-logs when a test failed.
.PHONY: test-cluster
test-cluster: cluster-tools chart-tools crds
	# test_healthcheck_lease.py alerts a real Alertmanager.
	scripts/tools.sh apt prometheus-alertmanager:prometheus-alertmanager
	cargo build -q --locked -p ferrostack
	CI=true .tools/venv/bin/pytest -q -rs -p no:cacheprovider deploy/tests/cluster
