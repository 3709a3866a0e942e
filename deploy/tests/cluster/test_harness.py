"""The control plane itself: ready within 60 s, nodes shaped like deploy/kind/cluster.yaml, a
default StorageClass with volumes for the chart's claims, and no process left after `down`."""
import subprocess
import tempfile
from pathlib import Path

import yaml

from conftest import ROOT

KIND = yaml.safe_load((ROOT / "deploy" / "kind" / "cluster.yaml").read_text())


def test_ready_within_a_minute(cluster):
    assert cluster.ready_seconds < 60, f"control plane took {cluster.ready_seconds:.0f}s"
    health = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "readyz check passed" in health


def test_nodes_carry_the_kind_cluster_labels(cluster):
    nodes = cluster.get("nodes")["items"]
    assert len(nodes) == len(KIND["nodes"]) == 3
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True", node["metadata"]["name"]
        alloc = node["status"]["allocatable"]
        assert alloc["cpu"] == "4" and alloc["memory"] == "8Gi", alloc
    # Each kind node's labels appear on one KWOK node, in the same order of roles.
    by_role = sorted(nodes, key=lambda n: n["metadata"]["name"])
    for want, node in zip(KIND["nodes"], by_role):
        labels = node["metadata"]["labels"]
        for key, value in (want.get("labels") or {}).items():
            assert labels.get(key) == str(value), (node["metadata"]["name"], key)
        is_cp = "node-role.kubernetes.io/control-plane" in labels
        assert is_cp == (want["role"] == "control-plane")
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes}
    assert len(zones) == 3


def test_a_claim_binds_a_volume_when_its_pod_schedules(cluster, namespace):
    default = [sc for sc in cluster.get("storageclass")["items"]
               if sc["metadata"].get("annotations", {}).get(
                   "storageclass.kubernetes.io/is-default-class") == "true"]
    assert [sc["metadata"]["name"] for sc in default] == ["standard"]
    cluster.apply([
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "data", "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user", "namespace": namespace},
         "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10.2",
                                  "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                  "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}},
    ])
    cluster.wait_until("the claim to bind", lambda: cluster.get(
        "pvc", "data", "-n", namespace)["status"].get("phase") == "Bound")
    cluster.wait_until("the pod to run", lambda: cluster.get(
        "pod", "user", "-n", namespace)["status"].get("phase") == "Running")


def test_down_leaves_no_process_behind(cluster):
    """A second control plane, started and stopped: none of its processes survive."""
    with tempfile.TemporaryDirectory(prefix="ferrostack-cluster-down-") as d:
        script = str(ROOT / "scripts" / "cluster.sh")
        up = subprocess.run([script, "up", d], capture_output=True, text=True, timeout=180)
        assert up.returncode == 0, up.stderr[-2000:]
        pids = [line.split()[0] for line in Path(d, "pids").read_text().splitlines()]
        assert len(pids) == 5
        subprocess.run([script, "down", d], capture_output=True, text=True, timeout=120, check=True)
        alive = subprocess.run(["pgrep", "-f", d], capture_output=True, text=True).stdout.split()
        assert alive == [], f"still running after down: {alive}"
