"""The platform installs on a fresh cluster of each environment: values that fit the cluster they
go to (Traefik, Jenkins' and the monitoring volumes, control-plane scraping), resolved by Ansible
itself, and the upstream chart behaviour each one depends on, quoted from that chart's source."""
import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from charts import template
from conftest import ROOT
from test_ansible import ANSIBLE, ENVIRONMENTS, VENV_BIN, fake_helm, run_playbook, upgrades  # noqa: F401
from test_cluster import fake_tools, flag, release, run_up

KPS_VALUES = ROOT / "deploy" / "observability" / "kube-prometheus-stack" / "values.yaml"
HOSTS = yaml.safe_load((ANSIBLE / "inventory" / "hosts.yml").read_text())["all"]["children"]


def resolve(env: str, expression: str, tmp_path: pathlib.Path, playbook: str | None = None):
    """What Ansible itself makes of a Jinja expression for the environment's inventory host (with
    the play variables of `playbook`, which Ansible templates lazily like its own)."""
    ansible_env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
                   "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "a"),
                   "ANSIBLE_NOCOLOR": "1"}
    host = next(iter(HOSTS[env]["hosts"]))
    extra = []
    if playbook:
        (play,) = yaml.safe_load((ANSIBLE / "playbooks" / playbook).read_text())
        (tmp_path / "play-vars.json").write_text(json.dumps(play["vars"]))
        extra = ["-e", f"@{tmp_path / 'play-vars.json'}"]
    res = subprocess.run([str(VENV_BIN / "ansible"), host, *extra, "--playbook-dir", "playbooks", "-m",
                          "ansible.builtin.debug", "-a", json.dumps({"msg": "{{ " + expression + " | to_json }}"})],
                         cwd=ANSIBLE, env=ansible_env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(json.loads(res.stdout.split("=>", 1)[1])["msg"])


def play_var(playbook: str, name: str) -> str:
    """The Jinja expression of a play variable (for resolve())."""
    (play,) = yaml.safe_load((ANSIBLE / "playbooks" / playbook).read_text())
    text = play["vars"][name].strip()
    assert text.startswith("{{") and text.endswith("}}"), text
    return text[2:-2].strip()


def merged_files(paths):
    out = {}
    for path in paths:
        out = deep_merge(out, yaml.safe_load(pathlib.Path(path).read_text()))
    return out


def deep_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def helm_values_files(line: str) -> list[str]:
    words = line.split()
    return [words[i + 1] for i, w in enumerate(words) if w == "-f"]


def service_monitor_on(values: dict) -> bool:
    return bool(((values.get("metrics") or {}).get("prometheus") or {}).get("serviceMonitor", {}).get("enabled"))


# --- item 4: Traefik is installed before the Prometheus Operator CRDs exist -------------------
# Upstream traefik/templates/servicemonitor.yaml (traefik-helm-chart, the chart traefik_chart pins):
#   {{- if (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}
#     {{- if (not (.Values.metrics.prometheus.disableAPICheck)) }}
#       {{- fail "ERROR: You have to deploy monitoring.coreos.com/v1 first" }}
# reached whenever the ServiceMonitor is enabled; on a fresh cluster nothing has installed that
# API group before kube-prometheus-stack (step 3 of up.sh, monitoring.yml in site.yml).

def test_up_sh_installs_traefik_without_a_service_monitor_before_the_crds(tmp_path):
    lines = run_up(fake_tools(tmp_path, tmp_path / "cluster-exists"))
    installs = [line for line in lines if line.startswith("helm") and " upgrade --install " in line]
    order = [release(line) for line in installs]
    traefik = installs[order.index("traefik")]
    assert order.index("traefik") < order.index("kube-prometheus-stack")
    values = merged_files(helm_values_files(traefik))
    assert not service_monitor_on(values), "the Traefik chart fails to render without monitoring.coreos.com/v1"
    assert values["priorityClassName"] == "ferrostack-platform"


@pytest.fixture(scope="module")
def traefik_values(fake_helm):  # noqa: F811
    """The values playbooks/ingress.yml hands helm in each environment (one run each: a second
    run against the same stand-in state is rightly a no-op)."""
    out = {}
    for env in ENVIRONMENTS:
        (up,) = upgrades(run_playbook(fake_helm, "ingress.yml", env)[0])
        (out[env],) = [yaml.safe_load(text) for text in up["files"].values()]
    return out


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ansible_installs_traefik_without_a_service_monitor(traefik_values, env):
    assert not service_monitor_on(traefik_values[env]), env
    site = [p["ansible.builtin.import_playbook"] for p in yaml.safe_load((ANSIBLE / "playbooks" / "site.yml").read_text())]
    assert site.index("ingress.yml") < site.index("monitoring.yml")


def test_prometheus_scrapes_traefik_through_a_pod_monitor():
    """kube-prometheus-stack renders the PodMonitor (prometheus.additionalPodMonitors) once its
    CRDs exist; it selects the pods ferrostack's NetworkPolicy knows as Traefik's, in the ingress
    namespace, on the container port the Traefik chart names after ports.metrics ("metrics")."""
    kps = yaml.safe_load(KPS_VALUES.read_text())
    (pm,) = [m for m in kps["prometheus"]["additionalPodMonitors"] if m["name"] == "traefik"]
    common = yaml.safe_load((ANSIBLE / "values" / "ferrostack" / "common.yaml").read_text())
    peer = common["networkPolicy"]["ingressController"]
    assert pm["namespaceSelector"] == {"matchNames": [peer["namespace"]]}
    assert pm["selector"]["matchLabels"] == peer["podLabels"]
    assert pm["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics"}]
    # Prometheus selects PodMonitors of any release (the chart's default selects only its own)
    assert kps["prometheus"]["prometheusSpec"]["podMonitorSelectorNilUsesHelmValues"] is False


# --- item 5: Traefik's values per environment ------------------------------------------------

def node_labels_outside_kind() -> str:
    """Every file that labels nodes of the kubeadm cluster or of EKS (Karpenter's NodePools)."""
    paths = [*sorted((ROOT / "deploy" / "kubeadm").rglob("*")), *sorted((ROOT / "deploy" / "autoscaling").glob("*.yaml"))]
    return "\n".join(p.read_text() for p in paths if p.is_file())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_traefik_values_fit_the_environments_nodes(traefik_values, env):
    values = traefik_values[env]
    ports = values.get("ports", {})
    service = values.get("service", {}).get("spec", {}).get("type", "LoadBalancer")  # the chart's default
    if env == "development":
        # kind: the ingress-ready control plane, whose host ports 80/443 cluster.yaml maps
        assert values["nodeSelector"] == {"ingress-ready": "true"} and ports["web"]["hostPort"] == 80
        return
    # Only deploy/kind/cluster.yaml labels a node ingress-ready: a selector for it would leave the
    # pod Pending on kubeadm and EKS, and `wait` would time out.
    assert "ingress-ready" not in json.dumps(values.get("nodeSelector", {})), env
    assert "ingress-ready" not in node_labels_outside_kind()
    assert not [p for p in ports.values() if "hostPort" in p], f"{env}: no host ports outside kind"
    assert service in {"NodePort", "LoadBalancer"}, f"{env}: a ClusterIP Service is unreachable from outside"
    assert values["priorityClassName"] == "ferrostack-platform"


# --- item 6: Jenkins' volume, per environment ------------------------------------------------
# Upstream charts/jenkins/templates/home-pvc.yaml (jenkinsci/helm-charts) copies the value as is:
#   storageClassName: "{{ .Values.persistence.storageClass }}"
# and a claim naming a class the cluster does not have is never provisioned.
CLUSTER_CLASSES = {
    "development": "standard",     # kind's default StorageClass (kind's own local-path provisioner)
    "staging": "local-path",       # created by deploy/kubeadm/scripts/control-plane.sh
    "production": "gp3",           # the EBS CSI class README's Platform section requires of EKS
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_jenkins_volume_names_a_class_its_cluster_has(env, tmp_path):
    values = resolve(env, play_var("jenkins.yml", "jenkins_values"), tmp_path)
    assert values["persistence"]["storageClass"] == CLUSTER_CLASSES[env]
    assert values["controller"]["admin"]["existingSecret"] == "jenkins-admin", "the shared values stay"


def test_kubeadm_cluster_makes_local_path_its_default_class():
    """deploy/kubeadm installs the pinned local-path-provisioner (its manifest creates the
    StorageClass local-path) and marks it default: the Prometheus, Grafana, Elasticsearch and
    healthcheck claims, which name no class, get it from the DefaultStorageClass admission."""
    control = (ROOT / "deploy" / "kubeadm" / "scripts" / "control-plane.sh").read_text()
    manifest = ("https://raw.githubusercontent.com/rancher/local-path-provisioner/"
                "$LOCAL_PATH_PROVISIONER_VERSION/deploy/local-path-storage.yaml")
    apply = control.index(f'kubectl apply -f "{manifest}"')
    default = control.index("kubectl annotate --overwrite storageclass local-path "
                            "storageclass.kubernetes.io/is-default-class=true")
    assert control.index("tigera-operator.yaml") < apply < default
    assert "LOCAL_PATH_PROVISIONER_VERSION:?" in control
    vagrantfile = (ROOT / "deploy" / "kubeadm" / "Vagrantfile").read_text()
    assert '"LOCAL_PATH_PROVISIONER_VERSION" => VERSIONS.fetch("local_path_provisioner")' in vagrantfile
    assert CLUSTER_CLASSES["staging"] == "local-path"


# --- item 10: the Ingress certificate is issued in every Ansible environment -------------------
# cert-manager's ingress-shim (pkg/apis/certmanager/v1/types.go of the pinned cert-manager:
#   IngressClusterIssuerNameAnnotationKey = "cert-manager.io/cluster-issuer")
# creates a Certificate for each tls entry of an Ingress carrying that annotation, stored in the
# entry's secretName; without the annotation nothing issues ferrostack-tls.

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ingress_certificate_is_issued_by_the_installed_ca(env, tmp_path):
    vdir = ANSIBLE / "values" / "ferrostack"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(merged_files([vdir / "common.yaml", vdir / f"{env}.yaml"])))
    docs = template(ROOT / "deploy" / "helm" / "ferrostack", "ferrostack", "ferrostack", [values],
                    sets={"image.tag": "0123abc"})
    (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
    issuer = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    shipped = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kind" / "cluster-issuer.yaml").read_text())
               if d and d["kind"] == "ClusterIssuer"]
    assert issuer in {d["metadata"]["name"] for d in shipped}, "a ClusterIssuer cert_manager.yml installs"
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] == "ferrostack-tls"
    assert set(tls["hosts"]) == {rule["host"] for rule in ingress["spec"]["rules"]}


# --- item 11: no control-plane scraping where the control plane is managed (EKS) --------------
# kube-prometheus-stack's rule generator (charts/kube-prometheus-stack/hack, AlertConditionMap)
# renders "KubeSchedulerDown": ".Values.kubeScheduler.enabled" and "KubeControllerManagerDown":
# ".Values.kubeControllerManager.enabled"; the etcd group likewise needs kubeEtcd.enabled.

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_control_plane_scraped_only_where_it_can_be(env, tmp_path):
    # the expression monitoring.yml hands helm as release_values
    values = resolve(env, "kps_base | combine(kps_overrides, recursive=True)", tmp_path, "monitoring.yml")
    managed = env == "production"      # EKS: AWS runs the control plane out of Prometheus' reach
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"):
        assert values[component]["enabled"] is (not managed), (env, component)
    assert values["kubelet"]["enabled"] and values["kubeProxy"]["enabled"], "the nodes' own metrics stay"


# --- item 14: what the canary and the ScaledObjects need is installed ---------------------------
# The chart's canary (templates/canary.yaml) needs Argo Rollouts with its Traefik router and
# Traefik's CRD provider; `autoscaling.mode: keda` and production's headroom ScaledObject
# (deploy/autoscaling/headroom-scaledobject.yaml) need KEDA. Upstream argo-rollouts before v1.10
# (utils/defaults/defaults.go) defaults DefaultTraefikAPIGroup to "traefik.containo.us", a group
# Traefik v3 no longer serves; cmd/rollouts-controller/main.go takes --traefik-api-group and
# --traefik-api-version.
ARGO_VALUES = ANSIBLE / "values" / "argo-rollouts.yaml"
KEDA_VALUES = ANSIBLE / "values" / "keda.yaml"


def test_up_sh_installs_argo_rollouts_and_keda_before_ferrostack(tmp_path):
    """up.sh installs Argo Rollouts (with the shared values) and KEDA after Traefik and before the
    ferrostack chart, whose Rollouts and ScaledObjects need their CRDs."""
    lines = run_up(fake_tools(tmp_path, tmp_path / "cluster-exists"))
    installs = [line for line in lines if " upgrade --install " in line]
    order = [release(line) for line in installs]
    assert order.index("traefik") < order.index("argo-rollouts") < order.index("ferrostack")
    assert order.index("keda") < order.index("ferrostack")
    argo = installs[order.index("argo-rollouts")]
    assert helm_values_files(argo) == [str(ARGO_VALUES)]
    assert helm_values_files(installs[order.index("keda")]) == [str(KEDA_VALUES)]


def test_argo_rollouts_routes_through_the_traefik_group_traefik_serves():
    """The controller's Traefik router talks to traefik.io/v1alpha1, the group and version of the
    TraefikService the chart renders and Traefik's CRDs serve; its RBAC keeps that provider."""
    values = yaml.safe_load(ARGO_VALUES.read_text())
    args = values["controller"]["extraArgs"]
    chart = ROOT / "deploy" / "helm" / "ferrostack"
    out = subprocess.run([str(ROOT / ".tools" / "bin" / "helm"), "template", "fs", str(chart),
                          "--set", "canary.enabled=true"], capture_output=True, text=True, check=True)
    (ts,) = {d["apiVersion"] for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "TraefikService"}
    assert f"--traefik-api-version={ts}" in args
    assert f"--traefik-api-group={ts.split('/')[0]}" in args
    assert values["providerRBAC"]["providers"]["traefik"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ansible_installs_argo_rollouts_and_keda(fake_helm, env):  # noqa: F811
    """Each environment (production's headroom needs KEDA) gets both charts at their pins, from
    their pinned repositories, waited for, with the shared values; a second run changes nothing."""
    from charts import versions
    pins = versions()
    calls = run_playbook(fake_helm, "argo_rollouts.yml", env)[0] + run_playbook(fake_helm, "keda.yml", env)[0]
    ups = upgrades(calls)
    assert [u["args"][-2:] for u in ups] == [["argo-rollouts", "argo/argo-rollouts"], ["keda", "kedacore/keda"]]
    assert [u["env"]["HELM_NAMESPACE"] for u in ups] == ["argo-rollouts", "keda"]
    for up, key in zip(ups, ("argo_rollouts", "keda")):
        assert f"--version={pins[f'{key}_chart']}" in up["args"] and "--wait" in up["args"]
    repos = {c["args"][2]: c["args"][3] for c in calls if c["args"][:2] == ["repo", "add"]}
    assert repos == {"argo": pins["argo_rollouts_repo"], "kedacore": pins["keda_repo"]}
    assert [yaml.safe_load(next(iter(u["files"].values()))) for u in ups] == [
        yaml.safe_load(ARGO_VALUES.read_text()), yaml.safe_load(KEDA_VALUES.read_text())]
    again = run_playbook(fake_helm, "argo_rollouts.yml", env)
    assert upgrades(again[0]) == [] and again[1] == 0


def test_site_installs_the_controllers_before_ferrostack():
    """site.yml imports Argo Rollouts and KEDA before the ferrostack play (their CRDs first)."""
    site = [p["ansible.builtin.import_playbook"]
            for p in yaml.safe_load((ANSIBLE / "playbooks" / "site.yml").read_text())]
    assert site.index("ingress.yml") < site.index("argo_rollouts.yml") < site.index("ferrostack.yml")
    assert site.index("keda.yml") < site.index("ferrostack.yml")
