"""GitHub workflows: schema-valid offline, actions pinned by SHA, least privilege, and the kind
end-to-end job doing every step of issue 6 on the cluster and ingress controller of deploy/kind.
The image build is checked in test_image.py."""

import re
import subprocess

import pytest
import yaml

from conftest import ROOT, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_expected_workflows():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "image.yml", "e2e-kind.yml"}


def test_workflows_match_the_github_schema():
    out = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                          *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_zizmor_finds_nothing(tmp_path):
    """zizmor's offline audits (unpinned uses, excessive permissions, template injection,
    credential persistence, cache poisoning...) find nothing; a careless workflow fails them."""
    out = subprocess.run([tool("zizmor"), "--offline", "--no-progress", *map(str, WORKFLOWS)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "No findings to report" in out.stdout + out.stderr, out.stdout + out.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\non: [push]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - uses: actions/checkout@v4\n"
                   "      - run: echo \"${{ github.event.head_commit.message }}\"\n")
    out = subprocess.run([tool("zizmor"), "--offline", "--no-progress", str(bad)], capture_output=True, text=True)
    for finding in ("unpinned-uses", "template-injection", "excessive-permissions"):
        assert finding in out.stdout, out.stdout


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


E2E = ROOT / ".github" / "workflows" / "e2e-kind.yml"


def e2e_steps():
    return {s.get("name", s.get("uses", "")): s for s in load(E2E)["jobs"]["kind"]["steps"]}


def step_with(needle):
    """The one e2e step whose run script (or uses) contains needle."""
    found = [s for s in load(E2E)["jobs"]["kind"]["steps"]
             if needle in s.get("run", "") or needle in s.get("uses", "")]
    assert len(found) == 1, f"{len(found)} e2e steps contain {needle!r}"
    return found[0]


def test_e2e_workflow_covers_the_story():
    """Every step issue 6 names, in order: kind cluster, image loaded, ingress controller,
    chart installed into dev, helm test, curl through the ingress, the webhook's deny and admit."""
    order = ["helm/kind-action", "kind load docker-image", "helm upgrade --install traefik",
             "helm upgrade -i fs", "helm test fs", "https://$host/healthz",
             "kubectl apply --dry-run=server -f /tmp/bad.yaml"]
    steps = load(E2E)["jobs"]["kind"]["steps"]
    index = [steps.index(step_with(n)) for n in order]
    assert index == sorted(index), dict(zip(order, index))
    install = step_with("helm upgrade -i fs")["run"]
    assert "--namespace dev" in install and "ci/kind-values.yaml" in install and "--wait" in install
    curl = step_with("https://$host/healthz")["run"]
    assert "test \"$code\" = 200" in curl and "--cacert /tmp/tls.crt" in curl, "TLS verified, 200 required"
    assert " -k" not in curl and "--insecure" not in curl
    webhook = step_with("/tmp/bad.yaml")["run"]
    assert "denied the request" in webhook and "--dry-run=server -f /tmp/good.yaml" in webhook
    assert "bad pod was admitted\"; exit 1" in webhook


def kind_profile():
    return yaml.safe_load((ROOT / "deploy" / "helm" / "ferrostack" / "ci" / "kind-values.yaml").read_text())


def test_e2e_runs_the_kind_cluster_and_traefik_of_deploy_kind():
    """One kind cluster and one ingress controller for up.sh, the e2e job and the chart's kind
    profile: Traefik from the chart, repository and values deploy/kind/up.sh uses."""
    kind = next(s for s in load(E2E)["jobs"]["kind"]["steps"] if "helm/kind-action" in s.get("uses", ""))
    assert kind["with"]["config"] == "deploy/kind/cluster.yaml"
    run = step_with("helm upgrade --install traefik")["run"]
    up = (ROOT / "deploy" / "kind" / "up.sh").read_text()
    for needle in ('--version "$(pin traefik_chart)"', '--repo "$(pin traefik_repo)"',
                   "-f deploy/kind/values/traefik.yaml", "--namespace ingress"):
        assert needle in run, needle
    assert '-f "$here/values/traefik.yaml" --wait' in up and "--namespace ingress --create-namespace" in up
    assert 'TRAEFIK_VERSION=${TRAEFIK_VERSION:-$(pin traefik_chart)}' in up
    # The workflow's pin() is up.sh's reader.
    reader = re.search(r"^pin\(\) \{\n\s*(awk .*?)\\\n", up, re.M | re.S).group(1).strip()
    assert reader.replace('"$versions"', "deploy/versions.yaml") in run
    # Traefik's pods land on the control plane, which maps the host's 80/443 to them.
    traefik = yaml.safe_load((ROOT / "deploy" / "kind" / "values" / "traefik.yaml").read_text())
    cluster = yaml.safe_load((ROOT / "deploy" / "kind" / "cluster.yaml").read_text())
    cp = next(n for n in cluster["nodes"] if n["role"] == "control-plane")
    assert traefik["nodeSelector"].items() <= cp["labels"].items()
    mapped = {m["containerPort"] for m in cp["extraPortMappings"]}
    assert {traefik["ports"]["web"]["hostPort"], traefik["ports"]["websecure"]["hostPort"]} <= mapped
    assert traefik["ingressClass"]["enabled"] is True
    assert "ingress-nginx" not in E2E.read_text()


def test_chart_points_at_traefik():
    """The kind profile, the default values and Ansible's values name the same controller:
    IngressClass "traefik", its pods (app.kubernetes.io/name=traefik) in namespace "ingress"."""
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "ferrostack" / "values.yaml").read_text())
    ansible = yaml.safe_load((ROOT / "deploy" / "ansible" / "values" / "ferrostack" / "common.yaml").read_text())
    group_vars = yaml.safe_load((ROOT / "deploy" / "ansible" / "inventory" / "group_vars" / "all.yml").read_text())
    for src in (kind_profile(), values, ansible):
        assert src["ingress"]["className"] == "traefik"
        peer = src["networkPolicy"]["ingressController"]
        assert peer == {"namespace": group_vars["ingress_namespace"],
                        "podLabels": {"app.kubernetes.io/name": "traefik"}}


def test_e2e_certificate_and_hosts_match_the_kind_profile():
    hosts = {h["host"] for h in kind_profile()["ingress"]["hosts"]}
    assert set(load(E2E)["env"]["HOSTS"].split()) == hosts
    secret = kind_profile()["ingress"].get("tls", {}).get("secretName", "ferrostack-tls")
    run = step_with("openssl req")["run"]
    assert f"-n dev create secret tls {secret} " in run
    assert "subjectAltName" in run and "$HOSTS" in run
