"""Installing the chart's webhook (self-signed mode) refuses no pod while its caBundle is still
empty: the validating configuration is created Ignore and only the patch hook sets Fail."""
import base64
import json

import pytest

from conftest import CHART

RELEASE = "whinstall"
CONFIG = f"{RELEASE}-webhook"


@pytest.fixture
def installed(cluster, namespace):
    # KWOK completes the certgen hook Jobs' pods without running them: the Secret is never
    # written and caBundle stays empty, the state every install passes through.
    cluster.helm("install", RELEASE, str(CHART), "--namespace", namespace,
                 "-f", str(CHART / "ci" / "kind-values.yaml"), "--wait", "--timeout", "5m")
    try:
        yield namespace
    finally:
        cluster.helm("uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)


def test_no_pod_is_refused_while_the_ca_bundle_is_empty(cluster, installed):
    hooks = cluster.get("validatingwebhookconfiguration", CONFIG)["webhooks"]
    assert all(not h["clientConfig"].get("caBundle") for h in hooks)
    assert {h["failurePolicy"] for h in hooks} == {"Ignore"}
    workload = f"{installed}-workload"
    cluster.kubectl("create", "namespace", workload)
    try:
        cluster.kubectl("label", "namespace", workload, "ferrostack.io/admission=enforce")
        # The namespace is reviewed and the call cannot succeed (no caBundle, no real
        # webhook behind the Service): the pod must still be admitted.
        out = cluster.kubectl("-n", workload, "run", "app", "--image=nginx:1.27.3", check=False)
        assert out.returncode == 0, out.stderr
    finally:
        cluster.kubectl("delete", "namespace", workload, "--wait=false", check=False)


def test_an_upgrade_keeps_the_armed_policy(cluster, installed):
    """Once the patch hook has set caBundle and Fail, `helm upgrade` renders Fail too (the
    template looks the live configuration up): enforcement never lapses during an upgrade."""
    hooks = cluster.get("validatingwebhookconfiguration", CONFIG)["webhooks"]
    ca = cluster.get("configmap", "kube-root-ca.crt", "-n", installed)["data"]["ca.crt"]
    bundle = base64.b64encode(ca.encode()).decode()
    # What kube-webhook-certgen's patch step writes (caBundle and failurePolicy per webhook).
    patch = [{"op": "replace", "path": f"/webhooks/{i}/{field}", "value": value}
             for i in range(len(hooks))
             for field, value in (("clientConfig/caBundle", bundle), ("failurePolicy", "Fail"))]
    cluster.kubectl("patch", "validatingwebhookconfiguration", CONFIG, "--type=json",
                    "-p", json.dumps(patch))
    cluster.helm("upgrade", RELEASE, str(CHART), "--namespace", installed,
                 "-f", str(CHART / "ci" / "kind-values.yaml"), "--timeout", "5m")
    hooks = cluster.get("validatingwebhookconfiguration", CONFIG)["webhooks"]
    assert {h["failurePolicy"] for h in hooks} == {"Fail"}
    assert all(h["clientConfig"].get("caBundle") == bundle for h in hooks)
