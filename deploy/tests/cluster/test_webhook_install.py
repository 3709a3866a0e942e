"""Installing the chart's webhook (self-signed mode) refuses no pod while its caBundle is still
empty: the validating configuration is created Ignore and only the patch hook sets Fail."""
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
