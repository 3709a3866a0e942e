"""`ferrostack webhook audit` against the real API server, as the chart's CronJob runs it: with
the chart's own read-only ClusterRole (get and list, nothing else, so it can write nothing), it
reports what the policies say about the objects that exist, skips what controllers derived, and
agrees with an audit of `kubectl get -A -o yaml` output."""
import json
import re
import socket
import subprocess
import urllib.request

import yaml

from conftest import CHART, ROOT, helm_template
from testsupport import tool

BINARY = ROOT / "target" / "debug" / "ferrostack"
RELEASE = "aud"


def audit_role():
    """The ClusterRole the chart gives the audit CronJob (full profile)."""
    docs = helm_template(RELEASE, CHART, "audit-home", "-f", CHART / "ci" / "full-values.yaml")
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and "webhook-audit" in d["metadata"]["name"]]
    return role


def service_account_kubeconfig(cluster, namespace, tmp_path):
    """A kubeconfig for a ServiceAccount bound to the chart's audit ClusterRole only."""
    role = audit_role()
    role["metadata"] = {"name": f"audit-test-{namespace}"}
    cluster.apply([role,
                   {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "auditor", "namespace": namespace}},
                   {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"audit-test-{namespace}"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": role["metadata"]["name"]},
                    "subjects": [{"kind": "ServiceAccount", "name": "auditor",
                                  "namespace": namespace}]}])
    token = cluster.kubectl("-n", namespace, "create", "token", "auditor").stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "auditor", "user": {"token": token}}]
    for context in admin["contexts"]:
        context["context"]["user"] = "auditor"
    path = tmp_path / "auditor.kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    return path, role["metadata"]["name"]


class pushgateway:
    """Debian's prometheus-pushgateway on a free loopback port, its URL while in use."""

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([tool("prometheus-pushgateway"),
                                      f"--web.listen-address=127.0.0.1:{port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                return url
            except OSError:
                subprocess.run(["sleep", "0.1"])
        raise AssertionError("pushgateway never became ready")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def audit(*args, stdin=None):
    out = subprocess.run([str(BINARY), "webhook", "audit", *args], input=stdin,
                         capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines and "summary" in lines[-1], (out.stdout[-2000:], out.stderr[-2000:])
    return out.returncode, lines[:-1], lines[-1]["summary"], out.stderr


def ours(findings, namespace):
    return sorted((f["kind"], f["name"], f["policy"], f["field"]) for f in findings
                  if f["namespace"] == namespace)


def test_audit_reads_the_cluster_with_the_charts_read_only_role(cluster, namespace, tmp_path):
    cluster.apply([{"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "old", "namespace": namespace},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "old"}},
                             "template": {"metadata": {"labels": {"app": "old"}},
                                          "spec": {"containers": [{"name": "c",
                                                                   "image": "nginx:latest"}]}}}}])
    cluster.wait_until("the old deployment's pods", lambda: cluster.get(
        "-n", namespace, "pods")["items"] and len(cluster.get("-n", namespace, "pods")["items"]) == 2)
    kubeconfig, role = service_account_kubeconfig(cluster, namespace, tmp_path)
    # The role can read and nothing else: whatever the audit does, it writes nothing. (What
    # every account may do, such as creating SelfSubjectReviews, is the baseline.)
    def can(account):
        out = cluster.kubectl("auth", "can-i", "--list", f"--as=system:serviceaccount:{account}")
        return set(out.stdout.splitlines()[1:])
    cluster.kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    granted = can(f"{namespace}:auditor") - can(f"{namespace}:nobody")
    verbs = {v for line in granted for v in line.split("[")[-1].strip("] ").split()}
    assert granted and verbs <= {"get", "list"}, granted
    with pushgateway() as gateway:
        code, findings, summary, stderr = audit("--kubeconfig", str(kubeconfig),
                                                "--pushgateway-url", gateway)
        assert code == 1, stderr
        # The CronJob's metrics, read back from a real Pushgateway.
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as r:
            pushed = r.read().decode()
    objects = re.search(r'^ferrostack_webhook_audit_objects\{([^}]*)\} (\S+)$', pushed, re.M)
    assert objects and 'job="ferrostack-webhook-audit"' in objects.group(1), pushed
    assert float(objects.group(2)) == summary["objects"]
    assert 'policy="image-tag"' in pushed and "ferrostack_webhook_audit_last_success" in pushed
    mine = ours(findings, namespace)
    assert ("Deployment", "old", "image-tag", "spec.template.spec.containers[0].image") in mine
    # Its ReplicaSet and Pods are the controllers' copies of the template: not audited twice.
    assert {k for k, *_ in mine} == {"Deployment"}, mine
    assert summary["ownedSkipped"] >= 3 and summary["exitCode"] == 1

    # The same objects from `kubectl get -A -o yaml`, audited offline: the same findings.
    listed = cluster.kubectl("get", "-A", "-o", "yaml",
                             "namespaces,pods,replicationcontrollers,deployments,statefulsets,"
                             "daemonsets,replicasets,jobs,cronjobs").stdout
    code_offline, offline, _, _ = audit("-", stdin=listed)
    assert code_offline == 1
    assert ours(offline, namespace) == mine
    cluster.kubectl("delete", "clusterrole,clusterrolebinding", role, check=False)


def test_audit_without_any_source_says_what_to_give():
    code, *_ = (subprocess.run([str(BINARY), "webhook", "audit"], capture_output=True,
                               text=True, env={"PATH": "/usr/bin:/bin"}).returncode,)
    assert code == 2
