"""The real control plane for this suite: `scripts/cluster.sh up` (official kube-apiserver, etcd,
kube-controller-manager, kube-scheduler built from their Go modules, three KWOK nodes) started once
per session in a temporary directory, stopped at the end with no process left behind. Every
component's log is copied to .tools/results/cluster-logs/ when a test failed."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from testsupport import tool  # noqa: F401 - re-exported: the suite's modules import it from here

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "ferrostack"
K8S_BIN = ROOT / ".tools" / "k8s" / "bin"
LOGS_OUT = ROOT / ".tools" / "results" / "cluster-logs"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "helm",
              "kubectl", "blackbox_exporter", "grpc-health-probe")
sys.path.insert(0, str(Path(__file__).parent))


class Cluster:
    """One running control plane: its kubeconfig, and kubectl/helm bound to it."""

    def __init__(self, directory: Path, kubeconfig: Path, ready_seconds: float):
        self.dir = directory
        self.kubeconfig = kubeconfig
        self.ready_seconds = ready_seconds
        self.helm_home = directory / "helm"

    def env(self, **extra):
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig),
                    HELM_CACHE_HOME=str(self.helm_home / "cache"),
                    HELM_CONFIG_HOME=str(self.helm_home / "config"),
                    HELM_DATA_HOME=str(self.helm_home / "data"), **extra)

    def kubectl(self, *args, input=None, check=True, timeout=120):
        out = subprocess.run([str(K8S_BIN / "kubectl"), *args], input=input, capture_output=True,
                             text=True, env=self.env(), timeout=timeout)
        if check and out.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
        return out

    def get(self, *args):
        """`kubectl get ARGS -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, docs, *args, check=True):
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs)
        return self.kubectl("apply", "-f", "-", *args, input=text, check=check)

    def helm(self, *args, check=True, timeout=600):
        out = subprocess.run([tool("helm"), *args], capture_output=True, text=True,
                             env=self.env(), timeout=timeout)
        if check and out.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} exited {out.returncode}:\n{out.stderr.strip()}")
        return out

    def wait_until(self, what, predicate, timeout=60, interval=0.5):
        """Polls predicate() until it returns a truthy value; fails naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)


def require_components():
    missing = [c for c in COMPONENTS if not (K8S_BIN / c).exists()]
    if missing:
        reason = f"{', '.join(missing)} not built in {K8S_BIN}: run `make cluster-tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        item.session.ferrostack_failed = True


@pytest.fixture(scope="session")
def cluster(request):
    require_components()
    directory = Path(tempfile.mkdtemp(prefix="ferrostack-cluster-"))
    start = time.monotonic()
    up = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "up", str(directory)],
                        capture_output=True, text=True, timeout=180)
    ready = time.monotonic() - start
    try:
        if up.returncode != 0:
            request.session.ferrostack_failed = True
            pytest.fail(f"scripts/cluster.sh up failed:\n{up.stderr[-3000:]}")
        yield Cluster(directory, Path(up.stdout.strip().splitlines()[-1]), ready)
    finally:
        subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "down", str(directory)],
                       capture_output=True, text=True, timeout=120)
        if getattr(request.session, "ferrostack_failed", False) and (directory / "logs").exists():
            shutil.rmtree(LOGS_OUT, ignore_errors=True)
            shutil.copytree(directory / "logs", LOGS_OUT)
            print(f"\ncomponent logs kept in {LOGS_OUT}", file=sys.stderr)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def namespace(cluster, request):
    """A fresh namespace named after the test, deleted afterwards (without waiting)."""
    # Parametrized tests share a long prefix: a hash of the node id keeps the names distinct.
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def helm_template(release, chart, namespace, *args):
    """`helm template` of CHART (values files and --set as ARGS), the documents parsed."""
    out = subprocess.run([tool("helm"), "template", release, str(chart), "--namespace", namespace,
                          *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def apply_crds(cluster, items):
    """CRDs server-side applied in one request (idempotent across the suite's modules) and
    waited on until Established."""
    cluster.kubectl("apply", "--server-side", "--field-manager=ferrostack-test", "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                    timeout=300)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=120s",
                    *[f"crd/{d['metadata']['name']}" for d in items])
