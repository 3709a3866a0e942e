"""The platform on the real control plane: the platform PriorityClass outranks the apps', so an
app pod cannot preempt a platform pod (while it does preempt a pod without a class), and Jenkins'
volume claim in the development environment binds in kind's StorageClass."""
import time

import pytest
import yaml

from conftest import CHART, ROOT, helm_template

PLATFORM_CLASS = ROOT / "deploy" / "platform" / "priority-class.yaml"
GROUP_VARS = ROOT / "deploy" / "ansible" / "inventory" / "group_vars"
# the platform values that name the class (Traefik, kube-prometheus-stack, cert-manager)
PLATFORM_VALUES = {
    "traefik": ROOT / "deploy" / "ansible" / "values" / "traefik" / "common.yaml",
    "kube-prometheus-stack": ROOT / "deploy" / "observability" / "kube-prometheus-stack" / "values.yaml",
    "cert-manager": ROOT / "deploy" / "ansible" / "values" / "cert-manager.yaml",
}


def chart_priority_classes():
    """The PriorityClasses the ferrostack chart installs (helm template of its defaults)."""
    return {d["metadata"]["name"]: d for d in helm_template("fs", CHART, "default")
            if d["kind"] == "PriorityClass"}


def pod(name, namespace, node, cpu, priority_class=None):
    spec = {"nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10.2",
                            "resources": {"requests": {"cpu": cpu}}}]}
    if priority_class:
        spec["priorityClassName"] = priority_class
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def phase(cluster, namespace, name):
    out = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}", check=False)
    return out.stdout if out.returncode == 0 else "Gone"


def unschedulable(cluster, namespace, name):
    conds = cluster.get("pod", name, "-n", namespace)["status"].get("conditions", [])
    return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)


@pytest.fixture
def app_high(cluster, namespace):
    """A copy of the chart's ferrostack-high under a name of this test (PriorityClasses are
    cluster-wide; the chart's own name may belong to a release another test installs)."""
    high = chart_priority_classes()["ferrostack-high"]
    copy = {**high, "metadata": {"name": f"{namespace}-app-high"}}
    cluster.apply([copy])
    yield copy["metadata"]["name"], high["value"]
    cluster.kubectl("delete", "priorityclass", copy["metadata"]["name"], "--wait=false", check=False)


def test_platform_class_is_above_every_app_class(cluster):
    cluster.apply(PLATFORM_CLASS.read_text())
    platform = cluster.get("priorityclass", "ferrostack-platform")
    apps = chart_priority_classes()
    assert set(apps) >= {"ferrostack-high", "ferrostack-low"}
    assert platform["value"] > max(pc["value"] for pc in apps.values())
    assert platform["value"] < cluster.get("priorityclass", "system-cluster-critical")["value"]
    for name, path in PLATFORM_VALUES.items():
        assert path.read_text().count("priorityClassName: ferrostack-platform") >= 1, name
    kps = yaml.safe_load(PLATFORM_VALUES["kube-prometheus-stack"].read_text())
    assert {kps["prometheus"]["prometheusSpec"]["priorityClassName"],
            kps["alertmanager"]["alertmanagerSpec"]["priorityClassName"],
            kps["grafana"]["priorityClassName"]} == {"ferrostack-platform"}


def test_an_app_scale_out_cannot_preempt_the_platform(cluster, namespace, app_high):
    """Each worker has 4 CPU. A pod of the platform class takes 3 on one worker, a pod with no
    class 3 on the other; an app pod of ferrostack-high needing 3 CPU on either node: the
    scheduler preempts the classless pod (what the platform was before its class, priority 0)
    and never the platform's."""
    cluster.apply(PLATFORM_CLASS.read_text())
    app_class, _ = app_high
    cluster.apply([pod("platform", namespace, "ferrostack-worker2", "3", "ferrostack-platform"),
                   pod("classless", namespace, "ferrostack-worker", "3")])
    for name in ("platform", "classless"):
        cluster.wait_until(f"{name} to run", lambda n=name: phase(cluster, namespace, n) == "Running")

    # against the platform pod: stays Pending, the platform pod keeps running
    cluster.apply([pod("app-on-platform-node", namespace, "ferrostack-worker2", "3", app_class)])
    cluster.wait_until("the app pod to be found unschedulable",
                       lambda: unschedulable(cluster, namespace, "app-on-platform-node"), timeout=60)
    time.sleep(5)   # several scheduling attempts, each of which would have preempted by now
    assert phase(cluster, namespace, "platform") == "Running"
    assert phase(cluster, namespace, "app-on-platform-node") == "Pending"
    assert not cluster.get("pod", "app-on-platform-node", "-n", namespace)["status"].get("nominatedNodeName")

    # against a pod without a class: preempted, and the app pod takes its place
    cluster.apply([pod("app-on-classless-node", namespace, "ferrostack-worker", "3", app_class)])
    cluster.wait_until("the classless pod to be preempted",
                       lambda: phase(cluster, namespace, "classless") in ("Gone", "Failed"), timeout=90)
    cluster.wait_until("the app pod to run in its place",
                       lambda: phase(cluster, namespace, "app-on-classless-node") == "Running", timeout=90)
    assert phase(cluster, namespace, "platform") == "Running"


# --- Jenkins' volume in the development environment (kind) ----------------------------------

def test_jenkins_claim_binds_in_the_development_cluster(cluster, namespace):
    """The claim the Jenkins chart renders (charts/jenkins/templates/home-pvc.yaml:
    `storageClassName: "{{ .Values.persistence.storageClass }}"`) with the class playbooks/jenkins.yml
    gives development (group_vars jenkins_storage_class), in this kind-shaped cluster whose class is
    kind's `standard`. A volume of the claimed size (20Gi: larger than the harness's static ones)
    stands in for what kind's provisioner creates; not pre-bound, so the PV controller and the
    scheduler match it on the class as for any claim."""
    values = yaml.safe_load((ROOT / "deploy" / "jenkins" / "values.yaml").read_text())["persistence"]
    storage_class = yaml.safe_load((GROUP_VARS / "development.yml").read_text())["jenkins_storage_class"]
    pv = f"{namespace}-jenkins"
    cluster.apply([
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
         "spec": {"storageClassName": "standard", "capacity": {"storage": values["size"]},
                  "accessModes": [values["accessMode"]], "persistentVolumeReclaimPolicy": "Delete",
                  "hostPath": {"path": f"/var/lib/ferrostack-pv/{pv}"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "jenkins", "namespace": namespace},
         "spec": {"accessModes": [values["accessMode"]], "resources": {"requests": {"storage": values["size"]}},
                  "storageClassName": storage_class}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jenkins-0", "namespace": namespace},
         "spec": {"containers": [{"name": "jenkins", "image": "registry.k8s.io/pause:3.10.2",
                                  "volumeMounts": [{"name": "home", "mountPath": "/var/jenkins_home"}]}],
                  "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "jenkins"}}]}},
    ])
    try:
        deadline = time.monotonic() + 60
        while cluster.get("pvc", "jenkins", "-n", namespace)["status"].get("phase") != "Bound":
            if time.monotonic() > deadline:
                events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                                         "involvedObject.name=jenkins").stdout
                pytest.fail(f"the claim for class {storage_class!r} stays Pending:\n{events}")
            time.sleep(0.5)
        cluster.wait_until("Jenkins' pod to run", lambda: phase(cluster, namespace, "jenkins-0") == "Running")
    finally:
        cluster.kubectl("delete", "pv", pv, "--wait=false", check=False)


# --- the Jenkins agent pod (buildah's capabilities) ---------------------------------------------

def test_jenkins_agent_pod_is_accepted_by_the_api_server(cluster, namespace):
    """The agent pod as the kubernetes plugin submits it, validated by the real API server
    (server-side dry run): its own user namespace, the buildah container's SYS_ADMIN and
    SYS_CHROOT, AppArmor unconfined for it alone: fields and combinations the 1.37 API server
    validates (user namespaces, appArmorProfile), beyond what an offline schema knows."""
    pod = yaml.safe_load((ROOT / "deploy" / "jenkins" / "agent-pod.yaml").read_text())
    pod["metadata"].update(name="ferrostack-ci", namespace=namespace)
    # the Jenkins chart creates the agents' ServiceAccount (values serviceAccountAgent.name)
    cluster.apply([{"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": pod["spec"]["serviceAccountName"], "namespace": namespace}}])
    out = cluster.apply([pod], "--dry-run=server", "-o", "json", check=False)
    assert out.returncode == 0, out.stderr
    accepted = yaml.safe_load(out.stdout)
    assert accepted["spec"]["hostUsers"] is False
    buildah = next(c for c in accepted["spec"]["containers"] if c["name"] == "buildah")
    assert {"SYS_ADMIN", "SYS_CHROOT"} <= set(buildah["securityContext"]["capabilities"]["add"])
