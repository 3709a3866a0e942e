"""Shared fixtures: render the chart with helm for each profile and parse the objects."""

import functools
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from testsupport import free_port, tool  # noqa: F401 - re-exported: the suite's modules import them from here

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "ferrostack"
NAMESPACE = "dev"
RELEASE = "fs"

# profile name -> values files (beside the chart's own values.yaml)
PROFILES = {
    "default": [],
    "full": [CHART / "ci" / "full-values.yaml"],
    "kind": [CHART / "ci" / "kind-values.yaml"],
    # default values plus the combinations no shipped profile has: canary with an HPA on the
    # Rollout, and the self-signed webhook with a pinned digest.
    "mixed": [],
}
PROFILE_SETS = {
    "mixed": ("canary.enabled=true", "webhook.enabled=true", "dataApi.autoscaling.mode=keda",
              "monitoring.serviceMonitor.enabled=true",
              "image.digest=sha256:" + "1" * 64),
}


@functools.lru_cache(maxsize=None)
def ferrostack_binary():
    """The debug binary `make test-chart` builds, in cargo's own target directory (which
    CARGO_TARGET_DIR or a cargo config may move away from ./target)."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    path = Path(json.loads(out.stdout)["target_directory"]) / "debug" / "ferrostack"
    if not path.exists():
        pytest.fail(f"{path} missing: run `cargo build -p ferrostack` (make test-chart does)")
    return str(path)


def helm(*args, check=True):
    env = dict(os.environ, HELM_CACHE_HOME="/tmp/ferrostack-helm/cache",
               HELM_CONFIG_HOME="/tmp/ferrostack-helm/config",
               HELM_DATA_HOME="/tmp/ferrostack-helm/data")
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, env=env,
                          check=check)


def template_args(profile, sets=()):
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for f in PROFILES[profile]:
        args += ["-f", str(f)]
    for s in PROFILE_SETS.get(profile, ()) + tuple(sets):
        args += ["--set", s]
    return args


@functools.lru_cache(maxsize=None)
def render_text(profile, sets=()):
    return helm(*template_args(profile, sets)).stdout


@functools.lru_cache(maxsize=None)
def _render(profile, sets=()):
    return tuple(d for d in yaml.safe_load_all(render_text(profile, sets)) if d)


def render(profile, *sets):
    """The rendered objects (a fresh list each call; the dicts are shared, do not mutate)."""
    return list(_render(profile, tuple(sets)))


def find(docs, kind, name=None):
    out = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return out


def one(docs, kind, name):
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj):
    """The pod spec of any workload kind, or None."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def pod_labels(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj["metadata"].get("labels", {})
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def workloads(docs):
    return [d for d in docs if pod_spec(d) is not None]


def containers(spec):
    """Every container of a pod spec: init (incl. native sidecars) and regular."""
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def name(component):
    return f"{RELEASE}-{component}"


@pytest.fixture(params=sorted(PROFILES))
def profile(request):
    return request.param


@pytest.fixture
def docs(profile):
    return render(profile)


def get(url, timeout=10):
    """(status, body) of a GET; (None, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""
