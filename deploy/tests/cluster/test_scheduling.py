"""The case studies' scheduling rules, shown by the real kube-scheduler on the KWOK nodes with the
chart's own pod templates: soft anti-affinity spreads and still places every replica where a
required rule leaves pods Pending; app X's PriorityClass preempts app Y when the nodes are full and
its nodeAffinity lands it on the high-capacity node; the PodDisruptionBudget refuses an eviction
beyond its budget with 429 through the Eviction API."""
import collections
import json


from conftest import CHART, helm_template

WORKERS = {"ferrostack-worker", "ferrostack-worker2"}  # the control plane is tainted
HIGH_NODE = "ferrostack-worker"                           # tier: high


def render(namespace, *sets):
    """The chart without autoscalers (fixed replicas), with SETS as --set."""
    sets = ("backendApi.autoscaling.mode=none", "dataApi.autoscaling.mode=none", *sets)
    return helm_template("fs", CHART, namespace, *(a for s in sets for a in ("--set", s)))


def pick(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def workload(docs, name):
    """A component's Deployment with the ServiceAccount its pods run as."""
    return [pick(docs, "ServiceAccount", name), pick(docs, "Deployment", name)]


def pods(cluster, namespace, component):
    return cluster.get("pods", "-n", namespace, "-l",
                       f"app.kubernetes.io/component={component}")["items"]


def placement(cluster, namespace, component):
    """node -> Running pods of the component, and the number of Pending ones."""
    found = pods(cluster, namespace, component)
    running = collections.Counter(p["spec"]["nodeName"] for p in found
                                  if p["status"].get("phase") == "Running")
    pending = sum(1 for p in found if p["status"].get("phase") == "Pending")
    return running, pending


def settled(cluster, namespace, component, replicas):
    """The placement once every replica exists and each is Running or refused by the
    scheduler."""
    def done():
        found = pods(cluster, namespace, component)
        live = [p for p in found if not p["metadata"].get("deletionTimestamp")]
        unplaced = [p for p in live if p["status"].get("phase") != "Running" and not any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p["status"].get("conditions", []))]
        return len(live) == replicas and not unplaced
    cluster.wait_until(f"{replicas} {component} pods placed or refused", done, timeout=60)
    return placement(cluster, namespace, component)


def backend(namespace, replicas, required=False, sets=()):
    account, deploy = workload(render(namespace, f"backendApi.replicas={replicas}", *sets),
                               "fs-backend-api")
    spec = deploy["spec"]["template"]["spec"]
    spec.pop("priorityClassName")
    anti = spec["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"], "the chart's rule is soft"
    if required:  # the same term as a hard rule, for comparison
        terms = anti.pop("preferredDuringSchedulingIgnoredDuringExecution")
        anti["requiredDuringSchedulingIgnoredDuringExecution"] = [t["podAffinityTerm"]
                                                                   for t in terms]
    return [account, deploy]


# production's values (deploy/ansible/values/ferrostack/production.yaml): app X prefers the
# high-capacity nodes (weight 50), which alone would stack its replicas there.
PREFER_HIGH = ("backendApi.nodeAffinity.enabled=true", "backendApi.nodeAffinity.required=false",
               "backendApi.nodeAffinity.weight=50", "backendApi.nodeAffinity.key=tier",
               "backendApi.nodeAffinity.values={high}")


def test_soft_anti_affinity_spreads_four_replicas_two_and_two(cluster, namespace):
    cluster.apply(backend(namespace, 4, sets=PREFER_HIGH))
    running, pending = settled(cluster, namespace, "backend-api", 4)
    assert pending == 0 and set(running) == WORKERS and set(running.values()) == {2}, running


def test_soft_anti_affinity_places_six_on_two_nodes(cluster, namespace):
    cluster.apply(backend(namespace, 6))
    running, pending = settled(cluster, namespace, "backend-api", 6)
    assert pending == 0 and sum(running.values()) == 6 and set(running) == WORKERS, running


def test_required_anti_affinity_leaves_pods_pending(cluster, namespace):
    cluster.apply(backend(namespace, 6, required=True))
    running, pending = settled(cluster, namespace, "backend-api", 6)
    assert dict(running) == {n: 1 for n in WORKERS} and pending == 4, (running, pending)


def test_app_x_preempts_app_y_on_full_nodes_and_lands_on_the_high_capacity_node(cluster, namespace):
    """Case study 4.1. Y (data-api, ferrostack-low) fills both workers, two pods of 1.5 CPU
    each per 4-CPU node; X (backend-api, ferrostack-high, nodeAffinity tier=high) needs 1.5 CPU
    per pod: the scheduler evicts Y's pods on the high node to place X there."""
    big = ("resources.requests.cpu=1500m", "resources.limits.cpu=2")
    docs = render(namespace, "dataApi.replicas=4", *(f"dataApi.{b}" for b in big),
                  "backendApi.replicas=2", *(f"backendApi.{b}" for b in big),
                  "backendApi.nodeAffinity.enabled=true", "backendApi.nodeAffinity.required=true",
                  "backendApi.nodeAffinity.key=tier", "backendApi.nodeAffinity.values={high}")
    classes = [d for d in docs if d["kind"] == "PriorityClass"]
    assert {c["metadata"]["name"]: c["value"] for c in classes} == {
        "ferrostack-high": 100000, "ferrostack-low": 10000}
    cluster.apply(classes)
    try:
        cluster.apply(workload(docs, "fs-data-api"))
        running, pending = settled(cluster, namespace, "data-api", 4)
        assert set(running.values()) == {2} and pending == 0, running
        victims = {p["metadata"]["name"] for p in pods(cluster, namespace, "data-api")
                   if p["spec"]["nodeName"] == HIGH_NODE}

        cluster.apply(workload(docs, "fs-backend-api"))
        # X first finds no room (Unschedulable), then the scheduler preempts and places it.
        cluster.wait_until("X placed by preemption", lambda: placement(
            cluster, namespace, "backend-api") == ({HIGH_NODE: 2}, 0))
        cluster.wait_until("Y's evicted pods replaced and Pending", lambda: placement(
            cluster, namespace, "data-api") == ({"ferrostack-worker2": 2}, 2))
        left = {p["metadata"]["name"] for p in pods(cluster, namespace, "data-api")}
        assert not victims & left, "Y's pods on the high node were preempted"
        reasons = {e["reason"] for e in cluster.get("events", "-n", namespace)["items"]}
        assert "Preempted" in reasons, reasons
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=true", check=False)
        for c in classes:
            cluster.kubectl("delete", "priorityclass", c["metadata"]["name"], check=False)


def evict(cluster, namespace, pod):
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace}}
    return cluster.kubectl("create", "--raw",
                           f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                           input=json.dumps(body), check=False)


def test_pdb_refuses_an_eviction_beyond_its_budget_with_429(cluster, namespace):
    """As `kubectl drain` does: cordon, then evict. The first eviction uses the budget
    (maxUnavailable 1); its replacement cannot be scheduled, so the second is refused."""
    docs = render(namespace, "backendApi.replicas=3")
    account, deploy = workload(docs, "fs-backend-api")
    deploy["spec"]["template"]["spec"].pop("priorityClassName")
    pdb = pick(docs, "PodDisruptionBudget", "fs-backend-api")
    assert pdb["spec"]["maxUnavailable"] == 1
    cluster.apply([account, deploy, pdb])
    settled(cluster, namespace, "backend-api", 3)
    cluster.wait_until("the disruption budget to allow one eviction", lambda: cluster.get(
        "pdb", "fs-backend-api", "-n", namespace).get("status", {}).get("disruptionsAllowed") == 1)
    first, second = [p["metadata"]["name"] for p in pods(cluster, namespace, "backend-api")][:2]
    try:
        for node in WORKERS:
            cluster.kubectl("cordon", node)
        assert evict(cluster, namespace, first).returncode == 0
        refused = evict(cluster, namespace, second)
    finally:
        for node in WORKERS:
            cluster.kubectl("uncordon", node, check=False)
    assert refused.returncode != 0
    assert "429" in refused.stderr or "disruption budget" in refused.stderr, refused.stderr
