"""The Ansible site playbook for the development environment, run for real against the control
plane (kubernetes.core with the real helm and the Python client): the plays whose upstream
charts no registry here serves end with one SKIP line each, the rest deploy (the platform
PriorityClass, the ferrostack release), and a second run changes nothing."""
import re
import subprocess

import pytest
import yaml

from conftest import K8S_BIN, ROOT
from test_chart_install import crds  # noqa: F401 - the fixture: development enables ServiceMonitors

ANSIBLE = ROOT / "deploy" / "ansible"
VENV_BIN = ROOT / ".tools" / "venv" / "bin"
GROUP_VARS = yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / "development.yml").read_text())
# the plays that install upstream charts (their repositories are not reachable from our machines)
UPSTREAM_PLAYS = ["Install the Traefik ingress controller",
                  "Install cert-manager and the cluster CA issuer",
                  "Install kube-prometheus-stack, the Pushgateway and the Alertmanager configuration",
                  "Install metrics-server",
                  "Install Argo Rollouts (the chart's canary Rollouts and their analysis)",
                  "Install KEDA (ScaledObjects of the chart and of production's headroom)",
                  "Install the logging stack (ECK operator, Elasticsearch and Kibana, Fluent Bit)"]


def kubeconfig_for(cluster, context, directory):
    """The cluster's kubeconfig with its context renamed to the environment's `kube_context`."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["name"] = config["current-context"] = context
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def playbook(cluster, kubeconfig, home, name, limit, *extra, timeout=900):
    """ansible-playbook NAME -l LIMIT from deploy/ansible, as the deployer runs it."""
    # K8S_BIN first: its helm is helm 3 (deploy/versions.yaml helm_cli, the deployer image's),
    # whose command line kubernetes.core 6.x drives
    env = cluster.env(PATH=f"{K8S_BIN}:{VENV_BIN}:/usr/bin:/bin", HOME=str(home),
                      ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"),
                      ANSIBLE_LOCAL_TEMP=str(home / "ansible-tmp"), ANSIBLE_NOCOLOR="1")
    env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{name}", "-l", limit,
                           *extra], cwd=ANSIBLE, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def site(cluster, crds, tmp_path_factory):  # noqa: F811
    """A kubeconfig whose context has development's name (kind-ferrostack), and a runner."""
    tmp = tmp_path_factory.mktemp("ansible")
    kubeconfig = kubeconfig_for(cluster, GROUP_VARS["kube_context"], tmp)
    # what the skipped monitoring play creates, and the ferrostack dashboards go to
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}])

    def run():
        out = playbook(cluster, kubeconfig, tmp, "site.yml", "development",
                       "-e", "allow_unreachable_charts=true", "-e", "ferrostack_image_tag=test")
        assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
        return out.stdout

    try:
        yield run
    finally:
        ns = GROUP_VARS["ferrostack_namespace"]
        cluster.helm("uninstall", "ferrostack", "-n", ns, "--wait", check=False)
        cluster.kubectl("delete", "namespace", ns, "monitoring", "--wait=false", check=False)
        cluster.kubectl("delete", "priorityclass", "ferrostack-platform", check=False)


def changed(stdout):
    return int(re.search(r"kind-ferrostack\s*:.*changed=(\d+)", stdout).group(1))


def test_site_deploys_development_and_a_second_run_changes_nothing(cluster, site):
    first = site()
    skips = [line.strip() for line in first.splitlines() if "SKIP:" in line]
    for play in UPSTREAM_PLAYS:
        assert sum(play in line for line in skips) == 1, (play, skips)
    assert changed(first) >= 2, "the PriorityClass and the ferrostack release are changes"

    ns = GROUP_VARS["ferrostack_namespace"]
    release = cluster.helm("status", "ferrostack", "-n", ns, "-o", "json").stdout
    assert '"status":"deployed"' in release.replace(" ", "")
    assert cluster.get("priorityclass", "ferrostack-platform")["value"] > 100000
    for deploy in cluster.get("deployments", "-n", ns)["items"]:
        assert deploy["status"].get("readyReplicas") == deploy["spec"]["replicas"], deploy

    assert changed(site()) == 0, "a second run of an unchanged deploy reports changes"


def test_without_the_flag_an_unreachable_repository_fails_the_play(cluster, site, tmp_path):
    """The skip is opt-in: a real deploy whose chart repository does not answer must fail."""
    out = playbook(cluster, cluster.kubeconfig, tmp_path, "metrics_server.yml", "development",
                   timeout=300)
    assert out.returncode != 0 and "SKIP:" not in out.stdout, out.stdout[-3000:]


def test_production_gets_its_capacity_headroom(cluster, crds, tmp_path):  # noqa: F811
    """autoscaling.yml (production only): the placeholders at the lowest priority and the KEDA
    ScaledObject are accepted by the API server (KEDA's own CRD), and a second run changes
    nothing."""
    kubeconfig = kubeconfig_for(cluster, "production", tmp_path)
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ferrostack"}}])
    try:
        runs = [playbook(cluster, kubeconfig, tmp_path, "autoscaling.yml", "production",
                         timeout=300) for _ in range(2)]
        for out in runs:
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
        assert re.search(r"production-cluster\s*:.*changed=2", runs[0].stdout), runs[0].stdout
        assert re.search(r"production-cluster\s*:.*changed=0", runs[1].stdout), runs[1].stdout
        assert cluster.get("priorityclass", "ferrostack-headroom")["value"] < 0
        scaled = cluster.get("scaledobject", "ferrostack-headroom", "-n", "ferrostack")
        assert scaled["spec"]["scaleTargetRef"]["name"] == "ferrostack-headroom"
    finally:
        cluster.kubectl("delete", "namespace", "ferrostack", "--wait=false", check=False)
        cluster.kubectl("delete", "priorityclass", "ferrostack-headroom", check=False)
