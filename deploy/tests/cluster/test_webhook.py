"""The admission webhook end to end: `ferrostack webhook serve` as a local process, registered
with the real API server through the chart's own webhook configurations, answers kubectl."""
import base64
import json
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import CHART, ROOT, helm_template
from testsupport import free_port

BINARY = ROOT / "target" / "debug" / "ferrostack"
RELEASE = "e2e"
# The release namespace of the rendered chart: the webhook's own namespace.
HOME = "e2e-webhook-home"
ENFORCE = {"ferrostack.io/admission": "enforce"}
VALIDATE = "validate.webhook.ferrostack.io"


def chart_configurations():
    """The kind profile's two webhook configurations as the chart leaves them once installed."""
    docs = helm_template(RELEASE, CHART, HOME, "-f", CHART / "ci" / "kind-values.yaml")
    configs = [d for d in docs if d["kind"].endswith("WebhookConfiguration")]
    # In self-signed mode the patch hook sets caBundle and, when given, the validating
    # configuration's final failurePolicy: that is the state the webhook runs in.
    for job in (d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("-patch")):
        for c in job["spec"]["template"]["spec"]["containers"]:
            policy = [a.split("=", 1)[1] for a in c.get("args", [])
                      if a.startswith("--patch-failure-policy=")]
            if policy and "--patch-mutating=false" in c["args"]:
                for hook in next(x for x in configs if x["kind"].startswith("Validating"))["webhooks"]:
                    hook["failurePolicy"] = policy[0]
    assert sorted(c["kind"] for c in configs) == ["MutatingWebhookConfiguration",
                                                  "ValidatingWebhookConfiguration"]
    return configs


def pointed_at(configs, port, ca_pem):
    """The same configurations with clientConfig.service replaced by our process's URL."""
    out = json.loads(json.dumps(configs))
    for config in out:
        config["metadata"] = {"name": config["metadata"]["name"]}
        for hook in config["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}",
                                    "caBundle": base64.b64encode(ca_pem).decode()}
    return out


class Webhook:
    """One `ferrostack webhook serve` process and the configurations pointing at it."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.dir = Path(tempfile.mkdtemp(prefix="ferrostack-webhook-"))
        self.configs = chart_configurations()
        self.proc = None
        self.log = self.dir / "webhook.log"

    def start(self):
        self.port, self.metrics_port = free_port(), free_port()
        ca = self.dir / "ca.pem"
        ca.unlink(missing_ok=True)
        # debug for the review lines of allowed requests: they prove what reached us.
        self.proc = subprocess.Popen(
            [str(BINARY), "webhook", "serve", "--self-signed", "--ca-file", str(ca),
             "--host", "127.0.0.1", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port), "--namespace", HOME,
             # Namespace labels from the API server, as in a pod with the chart's ClusterRole.
             "--kubeconfig", str(self.cluster.kubeconfig),
             "--log-level", "info,admission=debug"],
            stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        self.cluster.wait_until("the webhook to be ready", self.ready, timeout=30)
        self.cluster.apply(pointed_at(self.configs, self.port, ca.read_bytes()))
        # The API server picks configurations up through an informer: wait until it calls us.
        self.cluster.wait_until("the API server to call the webhook", lambda: "denied" in
                                probe(self.cluster).stderr, timeout=30)

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metric(self, name, **labels):
        """Sum of a counter's series whose labels include `labels`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            text = r.read().decode()
        total = 0.0
        for m in re.finditer(rf"^{name}(?:{{(.*)}})? (\S+)$", text, re.M):
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def reviewed_namespaces(self):
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]
        return {x.get("namespace") for x in lines if x.get("message") == "admission review"}


PROBE_NS = "e2e-webhook-probe"


def probe(cluster):
    """A dry-run Pod CREATE the webhook denies, in a namespace it reviews."""
    return cluster.kubectl("-n", PROBE_NS, "run", "probe", "--image=nginx:latest",
                           "--dry-run=server", check=False)


def labelled_namespace(cluster, name):
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": ENFORCE}}])


@pytest.fixture(scope="module")
def webhook(cluster):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: cargo build --locked -p ferrostack")
    labelled_namespace(cluster, PROBE_NS)
    labelled_namespace(cluster, HOME)
    hook = Webhook(cluster)
    try:
        hook.start()
        yield hook
    finally:
        hook.stop()
        for config in hook.configs:
            cluster.kubectl("delete", config["kind"], config["metadata"]["name"],
                            "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", PROBE_NS, HOME, "--wait=false", check=False)


@pytest.fixture
def enforced(cluster, namespace):
    cluster.kubectl("label", "namespace", namespace, "ferrostack.io/admission=enforce")
    return namespace


def container(image, **fields):
    """A container that fails no enforced policy once the mutations (requests, seccomp,
    allowPrivilegeEscalation) are applied."""
    return {"name": "app", "image": image, "resources": {"limits": {"memory": "64Mi"}},
            "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
            **fields}


def deployment(namespace, name, image, **fields):
    """A Deployment that is compliant as written: the chart mutates Pods only, so a workload's
    template must carry what the mutations would otherwise add."""
    labels = {"app.kubernetes.io/name": name}
    spec = container(image, **fields)
    spec["resources"]["requests"] = {"cpu": "50m", "memory": "64Mi"}
    if not spec["securityContext"].get("privileged"):
        spec["securityContext"]["allowPrivilegeEscalation"] = False
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"securityContext": {
                                      "seccompProfile": {"type": "RuntimeDefault"}},
                                      "containers": [spec]}}}}


def non_compliant(namespace, name="bad"):
    return deployment(namespace, name, "nginx:latest",
                      securityContext={"privileged": True})


def pod(namespace, name, image="nginx:latest", spec=None):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [spec or {"name": "c", "image": image}]}}


def test_a_non_compliant_deployment_is_denied_with_our_message(cluster, webhook, enforced):
    out = cluster.apply([non_compliant(enforced)], check=False)
    assert out.returncode != 0
    assert f'admission webhook "{VALIDATE}" denied the request' in out.stderr
    assert 'image "nginx:latest" uses the tag latest' in out.stderr
    assert "privileged" in out.stderr
    assert cluster.kubectl("-n", enforced, "get", "deployment", "bad",
                           check=False).returncode != 0


def test_a_compliant_deployment_is_admitted_and_its_pods_too(cluster, webhook, enforced):
    cluster.apply([deployment(enforced, "good", "nginx:1.27.3")])
    # Its ReplicaSet and Pods pass the same webhooks when the controllers create them.
    cluster.wait_until("the deployment's pods", lambda: cluster.get(
        "-n", enforced, "deployment", "good")["status"].get("readyReplicas") == 2)


def test_a_pod_is_stored_with_the_mutations(cluster, webhook, enforced):
    # No seccomp, no allowPrivilegeEscalation, no requests: only the mutations make it pass.
    cluster.apply([pod(enforced, "mutated", spec=container("nginx:1.27.3"))])
    spec = cluster.get("-n", enforced, "pod", "mutated")["spec"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    stored = spec["containers"][0]
    assert stored["securityContext"]["allowPrivilegeEscalation"] is False
    # requests.memory from the limit, requests.cpu from mutations.defaultRequests.
    assert stored["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}


def test_warnings_reach_kubectl(cluster, webhook, enforced):
    out = cluster.apply([deployment(enforced, "warned", "nginx:1.27.3")])
    assert ('Warning: [probes] container "app": livenessProbe is not set'
            in out.stderr)
    assert "readOnlyRootFilesystem must be true" in out.stderr


def test_dry_run_is_answered_and_not_counted(cluster, webhook, enforced):
    reviews, violations = (webhook.metric("ferrostack_webhook_reviews_total", kind="Deployment"),
                           webhook.metric("ferrostack_webhook_violations_total"))
    denied = cluster.apply([non_compliant(enforced)], "--dry-run=server", check=False)
    assert denied.returncode != 0 and "uses the tag latest" in denied.stderr
    warned = cluster.apply([deployment(enforced, "dry", "nginx:1.27.3")], "--dry-run=server")
    assert "livenessProbe is not set" in warned.stderr
    # README: dryRun requests get the same answer but are not counted as violations; they
    # are reviews (the chart mutates Pods only: one validation each).
    assert webhook.metric("ferrostack_webhook_reviews_total", kind="Deployment") == reviews + 2
    assert webhook.metric("ferrostack_webhook_violations_total") == violations
    assert cluster.get("-n", enforced, "deployments")["items"] == []


def test_an_update_of_an_already_non_compliant_object(cluster, webhook, namespace):
    # Created before the namespace was enforced, as a workload older than the policy would be.
    cluster.apply([non_compliant(namespace)])
    cluster.kubectl("label", "namespace", namespace, "ferrostack.io/admission=enforce")
    # README: violations the old object already had are only warnings on UPDATE.
    scaled = cluster.kubectl("-n", namespace, "patch", "deployment", "bad",
                             "-p", '{"spec":{"replicas":3}}')
    assert "Warning:" in scaled.stderr and "uses the tag latest" in scaled.stderr
    assert cluster.get("-n", namespace, "deployment", "bad")["spec"]["replicas"] == 3
    # A new violation (another image with the tag latest) is denied.
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:latest"}]}}}}
    changed = cluster.kubectl("-n", namespace, "patch", "deployment", "bad", "-p",
                              json.dumps(patch), check=False)
    assert changed.returncode != 0
    assert 'image "busybox:latest" uses the tag latest' in changed.stderr


def test_namespace_pod_security_labels_choose_the_level(cluster, webhook, enforced):
    """As the built-in Pod Security admission: the namespace's enforce label sets the level the
    webhook holds its pods to, and a change of the label applies to the next request."""
    cluster.wait_until("the webhook's namespace watch", lambda: "namespace labels synced"
                       in webhook.log.read_text())
    level = "pod-security.kubernetes.io/enforce"
    # Everything compliant but capabilities.drop [ALL]: a rule of restricted, not of baseline.
    unrestricted = {"runAsNonRoot": True}
    cluster.kubectl("label", "namespace", enforced, f"{level}=baseline")
    admitted = lambda: cluster.apply([deployment(enforced, "baseline-ok", "nginx:1.27.3",
                                                 securityContext=unrestricted)], check=False)
    cluster.wait_until("baseline to admit it", lambda: admitted().returncode == 0)
    cluster.kubectl("label", "--overwrite", "namespace", enforced, f"{level}=restricted")
    denied = lambda: cluster.apply([deployment(enforced, "restricted-no", "nginx:1.27.3",
                                               securityContext=unrestricted)], check=False)
    out = cluster.wait_until("restricted to deny it", lambda: (d := denied()).returncode != 0 and d)
    assert "capabilities.drop must include ALL" in out.stderr


@pytest.mark.parametrize("where", ["kube-system", HOME])
def test_excluded_namespaces_never_reach_the_webhook(cluster, webhook, where):
    # Labelled like an enforced namespace, still excluded by the chart's namespaceSelector.
    cluster.kubectl("label", "namespace", where, "ferrostack.io/admission=enforce", "--overwrite")
    name = f"e2e-excluded-{int(time.time())}"
    try:
        cluster.apply([pod(where, name)])
    finally:
        cluster.kubectl("-n", where, "delete", "pod", name, "--wait=false", check=False)
        if where == "kube-system":
            cluster.kubectl("label", "namespace", where, "ferrostack.io/admission-")
    assert where not in webhook.reviewed_namespaces()


def test_with_the_webhook_stopped_each_failure_policy_holds(cluster, webhook, enforced):
    webhook.stop()
    try:
        # Mutating is Ignore (skipped), validating is Fail: a Pod that passes once mutated is
        # refused, and by the validating webhook, so the mutating one (called first) was
        # passed over.
        out = cluster.apply([pod(enforced, "good", spec=container("nginx:1.27.3"))], check=False)
        assert out.returncode != 0
        assert f'failed calling webhook "{VALIDATE}"' in out.stderr
        assert "mutate.webhook.ferrostack.io" not in out.stderr
        # kube-system and the webhook's own namespace never depend on it.
        for where in ("kube-system", HOME):
            name = f"e2e-down-{int(time.time())}"
            cluster.apply([pod(where, name)])
            cluster.kubectl("-n", where, "delete", "pod", name, "--wait=false")
    finally:
        webhook.start()
