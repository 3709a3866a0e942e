"""The external tools on every profile: helm lint, kubernetes-validate --strict (1.31, 1.35),
checkov with zero failed checks. Custom resources are checked in test_custom_resources.py."""

import json
import os
import subprocess

import pytest
import yaml

from conftest import CHART, NAMESPACE, PROFILE_SETS, PROFILES, helm, render, render_text, tool

# API groups served by Kubernetes itself (kubernetes-validate has their schemas).
CORE_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io",
               "scheduling.k8s.io", "rbac.authorization.k8s.io",
               "admissionregistration.k8s.io", "coordination.k8s.io"}
# Custom resources the chart may render; everything else is a mistake.
CUSTOM_GROUPS = {"argoproj.io", "traefik.io", "keda.sh", "cert-manager.io",
                 "monitoring.coreos.com", "gateway.networking.k8s.io"}


def group(doc):
    api = doc["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def test_helm_lint(profile):
    args = ["lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    for f in PROFILES[profile]:
        args += ["-f", str(f)]
    for s in PROFILE_SETS.get(profile, ()):
        args += ["--set", s]
    out = helm(*args, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def test_every_group_is_known(docs):
    unknown = {group(d) for d in docs} - CORE_GROUPS - CUSTOM_GROUPS
    assert not unknown, f"unexpected API groups {unknown}"


@pytest.mark.parametrize("k8s", ["1.31", "1.35"])
def test_kubernetes_validate_strict(profile, k8s, tmp_path):
    core = [d for d in render(profile) if group(d) in CORE_GROUPS]
    f = tmp_path / "core.yaml"
    f.write_text(yaml.safe_dump_all(core, sort_keys=False))
    out = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", k8s, str(f)],
                         capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    bad = [l for l in lines if l.startswith(("WARN", "ERROR")) or "Traceback" in l]
    assert out.returncode == 0 and not bad, "\n".join(bad or lines)
    passed = [l for l in lines if " passed for resource " in l]
    assert len(passed) == len(core), f"{len(passed)} of {len(core)} objects validated"


def test_kubernetes_validate_catches_a_bad_field(tmp_path):
    """The strict validator is live: a policy/v1 PDB with topologyKey (the case study's) fails."""
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "x", "namespace": "dev"},
        "spec": {"maxUnavailable": 1, "topologyKey": "kubernetes.io/hostname",
                 "selector": {"matchLabels": {"a": "b"}}}}))
    out = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", "1.31", str(f)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "topologyKey" in out.stdout + out.stderr


# Every skip the chart may carry; a new skip must be added here with care.
ALLOWED_SKIPS = {
    "CKV_K8S_43",   # no image digest given (values-dependent, see _helpers.tpl)
    "CKV_K8S_15",   # pullPolicy not Always (kind side-loaded image)
    "CKV_K8S_38",   # certgen hook Job needs its token
    "CKV_K8S_155",  # certgen ClusterRole patches this release's webhook caBundle
    "CKV_K8S_8",    # helm test pod: no liveness probe
    "CKV_K8S_9",    # helm test pod: no readiness probe
}


def run_checkov(profile, tmp_path):
    d = tmp_path / profile
    d.mkdir()
    (d / "rendered.yaml").write_text(render_text(profile))
    # Offline: no policy download, no mapping fetch, no PyPI update check.
    env = dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE")
    out = subprocess.run([tool("checkov"), "-d", str(d), "--framework", "kubernetes",
                          "--skip-download", "--compact", "-o", "json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    report = json.loads(out.stdout)
    return out.returncode, report


def test_checkov_zero_failed(profile, tmp_path):
    rc, report = run_checkov(profile, tmp_path)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert rc == 0 and not failed, failed
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 300
    for s in report["results"]["skipped_checks"]:
        assert s["check_id"] in ALLOWED_SKIPS, s["check_id"]
        reason = s["check_result"].get("suppress_comment") or ""
        assert len(reason) > 30, f"skip of {s['check_id']} on {s['resource']} without a reason"


def test_checkov_full_profile_needs_no_image_skips(tmp_path):
    """With a digest and pullPolicy Always (production), the image checks pass unskipped."""
    _, report = run_checkov("full", tmp_path)
    skipped = {s["check_id"] for s in report["results"]["skipped_checks"]}
    assert not skipped & {"CKV_K8S_43", "CKV_K8S_15"}
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_40", "CKV2_K8S_6"} <= passed


TOGGLES = [
    ("canary.enabled=true",),
    ("canary.enabled=true", "backendApi.autoscaling.mode=none", "dataApi.autoscaling.mode=keda"),
    ("webhook.enabled=true",),
    ("webhook.enabled=true", "webhook.tls.mode=cert-manager",
     "webhook.tls.certManager.issuerRef.name=ca", "webhook.tls.certManager.issuerRef.kind=ClusterIssuer"),
    ("backendApi.enabled=false",),
    ("dataApi.enabled=false", "logship.enabled=false"),
    ("healthcheck.enabled=false", "ingress.enabled=false", "networkPolicy.enabled=false"),
    ("healthcheck.cron.enabled=false", "healthcheck.serve.enabled=false"),
    ("monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true",
     "monitoring.dashboards.enabled=true", "httpRoute.enabled=true", "httpRoute.parentRefs[0].name=web"),
    ("priorityClasses.create=false", "ingress.tls.secretName="),
]


@pytest.mark.parametrize("sets", TOGGLES, ids=lambda s: ",".join(s))
def test_toggles_render_and_validate(sets, tmp_path):
    docs = render("default", *sets)
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "two objects with one name"
    core = [d for d in docs if group(d) in CORE_GROUPS]
    f = tmp_path / "core.yaml"
    f.write_text(yaml.safe_dump_all(core, sort_keys=False))
    out = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", "1.35", str(f)],
                         capture_output=True, text=True)
    bad = [l for l in (out.stdout + out.stderr).splitlines() if l.startswith(("WARN", "ERROR"))]
    assert out.returncode == 0 and not bad, "\n".join(bad)


def test_rendering_is_tidy(profile):
    """No whitespace-only lines (template trimming slips) and no float-formatted integers
    (Helm reads big YAML ints as float64: 268435456 would render as 2.68435456e+08)."""
    text = render_text(profile)
    assert not [i for i, l in enumerate(text.splitlines(), 1) if l and not l.strip()]
    assert "e+0" not in text


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML as the API server reads it: a key twice in one mapping is an error, not "last wins"."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def test_no_duplicate_keys(profile):
    """A template slip that writes a key twice (a second securityContext) would silently
    replace the first in every parser the other checks use."""
    assert list(yaml.load_all(render_text(profile), Loader=UniqueKeyLoader))
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'privileged'"):
        yaml.load("securityContext: {privileged: false, privileged: true}", Loader=UniqueKeyLoader)


def test_notes():
    out = helm("install", "fs", str(CHART), "--namespace", NAMESPACE, "--dry-run=client")
    notes = out.stdout.split("NOTES:", 1)[1]
    assert 'release "fs" in namespace "dev"' in notes
    assert "helm test fs -n dev" in notes
    assert len(notes.splitlines()) < 25, "short"


def test_kube_version_floor():
    """Chart.yaml kubeVersion: older clusters are refused (sleep preStop, policy/v1 PDB fields)."""
    out = helm("template", "fs", str(CHART), "--kube-version", "1.29.0", check=False)
    assert out.returncode != 0 and "kubeVersion" in out.stderr
