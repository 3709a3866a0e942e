"""Every chart profile installed for real with `helm upgrade --install --wait`: every object is
accepted, every workload becomes Available on the KWOK nodes, `helm test` passes, a second
upgrade changes nothing, and `helm uninstall` leaves no cluster-scoped object behind."""

import pytest
import yaml

from conftest import CHART, ROOT, apply_crds, helm_template
from shipped import custom_objects, group, upstream_crds

ANSIBLE_VALUES = ROOT / "deploy" / "ansible" / "values" / "ferrostack"
RELEASE = "fs"

# profile -> values files, layered as the chart's CI profiles and the Ansible play layer them
PROFILES = {
    "default": [],
    "kind": [CHART / "ci" / "kind-values.yaml"],
    "full": [CHART / "ci" / "full-values.yaml"],
    **{env: [ANSIBLE_VALUES / "common.yaml", ANSIBLE_VALUES / f"{env}.yaml"]
       for env in ("development", "staging", "production")},
}
# Cluster-scoped kinds no chart creates (the harness's own, or written by controllers).
IGNORED_CLUSTER_KINDS = {"nodes", "namespaces", "persistentvolumes", "componentstatuses",
                         "certificatesigningrequests", "apiservices", "csinodes"}


@pytest.fixture(scope="module")
def crds(cluster):
    """The upstream CRDs of the custom kinds the profiles use (ServiceMonitor, Rollout, ...),
    server-side applied (idempotent: the custom-resource tests apply the same) and Established."""
    upstream = upstream_crds()
    apply_crds(cluster, [upstream[gk] for gk in sorted({(group(d), d["kind"]) for _, d in custom_objects()})])


def values_args(profile):
    return [a for f in PROFILES[profile] for a in ("-f", str(f))]


def install_args(profile, *extra, namespace=None):
    return ["upgrade", "--install", RELEASE, str(CHART), "--namespace", namespace or f"p-{profile}",
            "--create-namespace", "--wait", "--wait-for-jobs", "--timeout", "180s",
            *values_args(profile), *extra]


def cluster_scoped(cluster):
    """kind/name of every listable cluster-scoped object."""
    kinds = cluster.kubectl("api-resources", "--namespaced=false", "--verbs=list",
                            "-o", "name").stdout.split()
    kinds = [k for k in kinds if k.split(".")[0] not in IGNORED_CLUSTER_KINDS]
    out = cluster.kubectl("get", ",".join(kinds), "-o", "name").stdout
    return set(out.split())


def manifest(cluster, profile):
    docs = yaml.safe_load_all(cluster.helm("get", "manifest", RELEASE, "-n", f"p-{profile}").stdout)
    return [d for d in docs if d]


def generations(cluster, profile):
    """Each release object's generation (its spec's version; status writes do not move it),
    or its resourceVersion for kinds without one, and the ReplicaSets of the namespace."""
    seen = {}
    for doc in manifest(cluster, profile):
        # kubectl ignores -n for a cluster-scoped kind
        ns = doc["metadata"].get("namespace", f"p-{profile}")
        obj = cluster.get(doc["kind"], doc["metadata"]["name"], "-n", ns)
        meta = obj["metadata"]
        seen[(doc["kind"], meta["name"])] = meta.get("generation", meta["resourceVersion"])
    rs = cluster.get("replicasets", "-n", f"p-{profile}")["items"]
    seen["replicasets"] = sorted(r["metadata"]["name"] for r in rs)
    return seen


def assert_workloads_available(cluster, profile):
    for kind in ("deployments", "statefulsets"):
        for obj in cluster.get(kind, "-n", f"p-{profile}")["items"]:
            status, want = obj["status"], obj["spec"].get("replicas", 1)
            assert status.get("readyReplicas", 0) == want, (kind, obj["metadata"]["name"], status)
            if kind == "deployments":
                cond = {c["type"]: c["status"] for c in status.get("conditions", [])}
                assert cond.get("Available") == "True", (obj["metadata"]["name"], cond)


def platform_namespaces(cluster, profile):
    """The namespaces outside its own that a profile puts objects in (the full profile's Grafana
    dashboards go to `monitoring`): on a real cluster the platform's installers create them."""
    rendered = helm_template(RELEASE, CHART, f"p-{profile}", *values_args(profile))
    namespaces = {d["metadata"].get("namespace") for d in rendered}
    for ns in sorted(namespaces - {None, f"p-{profile}"}):
        cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}])


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_installs_upgrades_idempotently_and_uninstalls_clean(cluster, crds, profile):
    platform_namespaces(cluster, profile)
    before = cluster_scoped(cluster)
    try:
        cluster.helm(*install_args(profile))
        assert_workloads_available(cluster, profile)
        assert any(d["kind"] == "Deployment" for d in manifest(cluster, profile))

        test = cluster.helm("test", RELEASE, "-n", f"p-{profile}", "--timeout", "60s")
        assert "Phase:          Succeeded" in test.stdout, test.stdout

        first = generations(cluster, profile)
        cluster.helm(*install_args(profile))
        assert generations(cluster, profile) == first, "a second upgrade changed objects"
    finally:
        uninstall(cluster, f"p-{profile}")
    leaked = cluster_scoped(cluster) - before
    assert not leaked, f"cluster-scoped objects left after uninstall: {sorted(leaked)}"


def uninstall(cluster, namespace):
    cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "120s",
                 check=False)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_healthcheck_cronjob_creates_a_job_on_its_schedule(cluster):
    """The CronJob controller starts a Job at the next minute (the schedule set to every minute,
    the only change from the default profile), the Job's pod claims the history volume, and the
    Job completes."""
    ns = "p-cron"
    cluster.helm(*install_args("default", "--set", "healthcheck.cron.schedule=* * * * *",
                               namespace=ns))
    try:
        jobs = cluster.wait_until("a Job from the CronJob", lambda: [
            j for j in cluster.get("jobs", "-n", ns)["items"]
            if any(o["kind"] == "CronJob" for o in j["metadata"].get("ownerReferences", []))],
            timeout=90, interval=2)
        name = jobs[0]["metadata"]["name"]
        cluster.wait_until(f"Job {name} to complete", lambda: cluster.get(
            "job", name, "-n", ns)["status"].get("succeeded") == 1, timeout=60)
        claim = cluster.get("pvc", "-n", ns)["items"]
        assert [c["status"]["phase"] for c in claim] == ["Bound"]
    finally:
        uninstall(cluster, ns)
