"""Least privilege, judged by the API server's own authorizer (`kubectl auth can-i --as`): each
ServiceAccount the chart creates may do exactly what its program calls, and one verb beyond is
refused."""

import pytest

from conftest import CHART, helm_template

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}

# kube-webhook-certgen (the hook's image), read in its pkg/k8s/k8s.go: `create` gets the Secret
# by name and creates it when missing; `patch` gets each webhook configuration, writes the
# caBundle with a server-side Apply (patch) and, for the failure policy, an Update.
CERTGEN_ALLOWED = [
    ("get", "secrets/{release}-webhook-tls"),
    ("create", "secrets"),
    *[(verb, f"{kind}/{{release}}-webhook")
      for verb in ("get", "update", "patch")
      for kind in ("validatingwebhookconfigurations.admissionregistration.k8s.io",
                   "mutatingwebhookconfigurations.admissionregistration.k8s.io")],
]
CERTGEN_REFUSED = [
    ("list", "secrets"),                    # it reads one Secret by name
    ("get", "secrets/other"),               # and no other
    ("update", "secrets/{release}-webhook-tls"),
    ("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io/{release}-webhook"),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/someone-else"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
]


def render(namespace, *values):
    """The chart with the CI profiles' values files VALUES."""
    return helm_template("fs", CHART, namespace, *(a for v in values for a in ("-f", CHART / "ci" / v)))


def can_i(cluster, namespace, sa, verb, resource):
    out = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace,
                          f"--as=system:serviceaccount:{namespace}:{sa}", check=False)
    return out.stdout.strip() == "yes"


def rules(cluster, namespace, sa):
    """What the authorizer lists for the account, as a set of lines."""
    out = cluster.kubectl("auth", "can-i", "--list", "-n", namespace,
                          f"--as=system:serviceaccount:{namespace}:{sa}")
    return set(out.stdout.splitlines()[1:])


def test_certgen_hook_may_do_what_kube_webhook_certgen_calls_and_no_more(cluster, namespace):
    # The hook's RBAC objects, as the kind profile renders them (they exist only while the
    # hook runs on a real install, so they are applied here directly).
    docs = [d for d in render(namespace, "kind-values.yaml")
            if d["kind"] in RBAC_KINDS and "certgen" in d["metadata"]["name"]]
    assert {d["kind"] for d in docs} == RBAC_KINDS
    cluster.apply(docs)
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    try:
        for verb, resource in CERTGEN_ALLOWED:
            assert can_i(cluster, namespace, sa, verb, resource.format(release="fs")), (verb, resource)
        for verb, resource in CERTGEN_REFUSED:
            assert not can_i(cluster, namespace, sa, verb, resource.format(release="fs")), (
                verb, resource)
    finally:
        for d in docs:
            if d["kind"].startswith("Cluster"):
                cluster.kubectl("delete", d["kind"], d["metadata"]["name"], check=False)


# The accounts that call the API, and what each may do beyond an unbound account: the webhook
# watches Namespaces (webhook.namespaceLabels); the audit CronJob gets and lists what the
# policies judge (webhook.audit); the healthcheck's status page renews its Lease. Everything
# else calls no Kubernetes API.
API_CALLERS = {
    "fs-webhook": {("namespaces", verb) for verb in ("get", "list", "watch")},
    "fs-webhook-audit": {(resource, verb) for verb in ("get", "list") for resource in (
        "namespaces", "pods", "replicationcontrollers", "deployments.apps", "statefulsets.apps",
        "daemonsets.apps", "replicasets.apps", "jobs.batch", "cronjobs.batch",
        "rollouts.argoproj.io")},
    # healthcheck serve's leader election: get and update (replace at a resourceVersion) of
    # the one Lease the chart creates, fs-healthcheck.
    "fs-healthcheck-serve": {("leases.coordination.k8s.io", verb) for verb in ("get", "update")},
}


def granted(lines):
    """(resource, verb) pairs of `kubectl auth can-i --list` lines."""
    pairs = set()
    for line in lines:
        cols = line.split()
        verbs = line[line.rindex("["):].strip("[] ").split()
        pairs |= {(cols[0], verb) for verb in verbs}
    return pairs


@pytest.mark.parametrize("profile", [(), ("kind-values.yaml",), ("full-values.yaml",)],
                         ids=["default", "kind", "full"])
def test_workload_service_accounts_hold_nothing_beyond_their_calls(cluster, namespace, profile):
    """The services call no Kubernetes API: their accounts (tokens not even mounted) hold
    exactly what every authenticated account holds. The webhook and the audit hold the reads
    their programs make, cluster-wide and read-only, and nothing more."""
    docs = render(namespace, *profile)
    bound = [d for d in docs if d["kind"] in RBAC_KINDS - {"ServiceAccount"}
             and "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    accounts = [d for d in docs if d["kind"] == "ServiceAccount"
                and "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    assert len(accounts) >= 3
    bound_to = {s["name"] for d in bound for s in d.get("subjects", [])}
    assert bound_to <= set(API_CALLERS), bound_to
    try:
        cluster.apply(accounts + bound + [{"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "unbound", "namespace": namespace}}])
        baseline = rules(cluster, namespace, "unbound")
        for sa in accounts:
            name = sa["metadata"]["name"]
            # Parsed before the difference: a longer row (a Lease's resourceNames) re-aligns
            # every column of the table.
            extra = granted(rules(cluster, namespace, name)) - granted(baseline)
            assert extra == (API_CALLERS[name] if name in bound_to else set()), name
            assert not can_i(cluster, namespace, name, "create", "pods")
            if name not in bound_to:
                assert not can_i(cluster, namespace, name, "get", "pods")
    finally:
        for d in bound:
            if d["kind"].startswith("Cluster"):
                cluster.kubectl("delete", d["kind"], d["metadata"]["name"], check=False)


def test_healthcheck_serve_may_renew_its_one_lease_and_nothing_else(cluster, namespace):
    """The status page's account gets and updates the Lease the chart creates; it cannot
    create, delete, list or watch Leases, nor touch another Lease (so a compromised replica can
    take over nothing else that elects through a Lease)."""
    sa = "fs-healthcheck-serve"
    docs = [d for d in render(namespace) if d["kind"] in RBAC_KINDS | {"Lease"}
            and d["metadata"]["name"].startswith("fs-healthcheck")]
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding", "Lease"}
    cluster.apply(docs)
    lease = "leases.coordination.k8s.io"
    for verb in ("get", "update"):
        assert can_i(cluster, namespace, sa, verb, f"{lease}/fs-healthcheck"), verb
    for verb, resource in [("create", lease), ("delete", f"{lease}/fs-healthcheck"),
                           ("list", lease), ("watch", lease), ("patch", f"{lease}/fs-healthcheck"),
                           ("get", f"{lease}/kube-scheduler"), ("update", f"{lease}/other")]:
        assert not can_i(cluster, namespace, sa, verb, resource), (verb, resource)
    # The CronJob's account (no token mounted either) holds nothing.
    assert not can_i(cluster, namespace, "fs-healthcheck", "get", f"{lease}/fs-healthcheck")
