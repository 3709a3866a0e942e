"""GitHub workflows (schema-valid offline, actions pinned by SHA, least privilege) and the
image build (deploy/Dockerfile, .dockerignore) checked statically: no Docker engine runs here,
the image itself is built by .github/workflows/image.yml."""

import re
import subprocess

import pytest
import yaml

from conftest import ROOT, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_expected_workflows():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "image.yml", "e2e-kind.yml"}


def test_workflows_match_the_github_schema():
    out = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                          *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def load(path):
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned_by_sha(path):
    uses = re.findall(r"uses:\s*(\S+)(.*)", path.read_text())
    assert uses
    for ref, comment in uses:
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.match(r"\s*# v?\d", comment), f"{ref}: say which version the SHA is"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege(path):
    doc = load(path)
    top = doc["permissions"]
    assert top in ({}, {"contents": "read"}), top
    for name, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        writes = {k for k, v in perms.items() if v == "write"}
        if path.name == "image.yml":
            assert writes <= {"packages", "id-token", "attestations"}
        else:
            assert not writes, (name, writes)
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False
    assert "pull_request_target" not in doc["on"]


def test_image_workflow_is_multi_arch_with_provenance():
    doc = load(ROOT / ".github" / "workflows" / "image.yml")
    steps = doc["jobs"]["image"]["steps"]
    build = next(s for s in steps if "build-push-action" in s.get("uses", ""))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True and build["with"]["provenance"] == "mode=max"
    assert build["with"]["file"] == "deploy/Dockerfile"
    assert any("attest-build-provenance" in s.get("uses", "") for s in steps)


def test_e2e_workflow_covers_the_story():
    text = (ROOT / ".github" / "workflows" / "e2e-kind.yml").read_text()
    for needle in ("helm/kind-action", "kind load docker-image", "helm upgrade -i fs",
                   "--namespace dev", "ci/kind-values.yaml", "helm test fs",
                   "https://$host/healthz", "denied the request", "--dry-run=server -f /tmp/good.yaml"):
        assert needle in text, needle


# --- image ----------------------------------------------------------------------------------

def dockerfile():
    text = DOCKERFILE.read_text()
    return [l.strip() for l in text.replace("\\\n", " ").splitlines()
            if l.strip() and not l.lstrip().startswith("#")]


def test_dockerfile_stages():
    froms = [l for l in dockerfile() if l.startswith("FROM ")]
    assert len(froms) >= 3, "multi-stage"
    runtime = froms[-1]
    assert re.match(r"FROM gcr\.io/distroless/(cc|static)-debian\d+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$", runtime)
    builder = next(f for f in froms if "rust:" in f)
    assert "--platform=$BUILDPLATFORM" in builder, "cross-compiles instead of emulating"
    assert "AS chef" in builder


def test_dependency_layer_is_cached_apart_from_the_sources():
    lines = dockerfile()
    cook = next(i for i, l in enumerate(lines) if "cargo chef cook" in l)
    copy_all = [i for i, l in enumerate(lines) if l.startswith("COPY . .")]
    build = next(i for i, l in enumerate(lines) if "cargo build --release --locked" in l)
    assert 'FERROSTACK_GIT_SHA="$REVISION"' in lines[build], "the commit reaches /version"
    assert any(i < cook for i in copy_all), "planner copies the tree"
    assert any(cook < i < build for i in copy_all), "sources copied after the dependency layer"
    assert "--locked" in lines[cook]


def test_runtime_user_and_entrypoint():
    lines = dockerfile()
    last_from = max(i for i, l in enumerate(lines) if l.startswith("FROM "))
    runtime = lines[last_from:]
    (user,) = [l for l in runtime if l.startswith("USER ")]
    uid, gid = user.split()[1].split(":")
    assert int(uid) >= 10001 and int(gid) >= 10001, "numeric non-root UID"
    assert 'ENTRYPOINT ["/usr/local/bin/ferrostack"]' in runtime
    assert not [l for l in runtime if l.startswith("RUN ")], "nothing runs in the runtime stage"
    labels = " ".join(l for l in runtime if l.startswith("LABEL"))
    for key in ("title", "description", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*", "deny by default"
    assert {"!Cargo.toml", "!Cargo.lock", "!crates"} <= set(lines)
