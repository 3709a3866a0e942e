"""Structural tests of the cluster bootstrap: the kind config and up.sh (run against recording
stand-ins for docker/kind/kubectl/helm), and the kubeadm Vagrant provisioning."""
import os
import pathlib
import re
import shutil
import subprocess

import json

import pytest
import yaml

from charts import template, versions
from conftest import ROOT

KIND = ROOT / "deploy" / "kind"
KUBEADM = ROOT / "deploy" / "kubeadm"
KPS_VALUES = ROOT / "deploy" / "observability" / "kube-prometheus-stack" / "values.yaml"


# --- kind -------------------------------------------------------------------------------------

def test_kind_cluster_shape():
    cfg = yaml.safe_load((KIND / "cluster.yaml").read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    cp = cfg["nodes"][0]
    assert cp["labels"]["ingress-ready"] == "true"
    assert {(m["containerPort"], m["hostPort"]) for m in cp["extraPortMappings"]} == {(80, 80), (443, 443)}
    tiers = {n["labels"]["tier"] for n in cfg["nodes"][1:]}
    assert tiers == {"high", "general"}, "priority/affinity demo needs a high-capacity node"
    assert all(n["labels"]["workload"] == "apps" for n in cfg["nodes"][1:])
    patches = "\n".join(cp["kubeadmConfigPatches"])
    assert "listen-metrics-urls" in patches and "metricsBindAddress" in patches


def fake_tools(tmp: pathlib.Path, state: pathlib.Path) -> dict:
    """Stand-ins that record their arguments; `kind` remembers that the cluster exists."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    log = tmp / "calls.log"
    scripts = {
        "kind": f"""echo "kind $*" >> {log}
case "$1 $2" in
  "get clusters") [ -f {state} ] && echo ferrostack; exit 0 ;;
  "create cluster") touch {state} ;;
esac""",
        "helm": f'echo "helm $*" >> {log}',
        "docker": f'echo "docker $*" >> {log}',
        "kubectl": f"""echo "kubectl $*" >> {log}
case " $* " in
  *" get secret "*) [ -f {state}.secrets ] || exit 1 ;;
  *" create secret generic "*" --dry-run=client "*) echo "apiVersion: v1" ;;
  *" create namespace "*) echo "apiVersion: v1" ;;
  *" apply -f - "*) cat >/dev/null ;;
esac
exit 0""",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp), "log": str(log)}


def release(line: str) -> str:
    return line.split(" upgrade --install ", 1)[1].split()[0]


def flag(line: str, name: str) -> str:
    words = line.split()
    return words[words.index(name) + 1]


def run_up(env: dict, **extra: str) -> list[str]:
    log = pathlib.Path(env["log"])
    log.write_text("")
    res = subprocess.run(["/bin/bash", str(KIND / "up.sh")],
                         env={**{k: v for k, v in env.items() if k != "log"}, **extra},
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return log.read_text().splitlines()


# release -> the chart key of deploy/versions.yaml it installs (None: a chart of this repository)
RELEASES = {"traefik": "traefik", "cert-manager": "cert_manager", "kube-prometheus-stack": "kube_prometheus_stack",
            "prometheus-pushgateway": "prometheus_pushgateway", "metrics-server": "metrics_server",
            "argo-rollouts": "argo_rollouts", "keda": "keda", "elastic-operator": "eck_operator", "logging": None, "fluent-bit": "fluent_bit", "ferrostack": None}


def test_up_installs_in_order_and_is_idempotent(tmp_path):
    state = tmp_path / "cluster-exists"
    env = fake_tools(tmp_path, state)
    first = run_up(env)
    assert sum(line.startswith("kind create cluster") for line in first) == 1
    assert any("--config" in line and "cluster.yaml" in line for line in first if line.startswith("kind create"))
    upgrades = [line for line in first if line.startswith("helm") and " upgrade --install " in line]
    installs = [release(line) for line in upgrades]
    # ingress, cert-manager, monitoring, metrics-server, Argo Rollouts and KEDA, logging (operator,
    # stack, shipper), ferrostack
    assert installs == list(RELEASES)
    # every upstream chart at the version and from the repository deploy/versions.yaml pins
    pins = versions()
    for line in upgrades:
        key = RELEASES[release(line)]
        if key:
            assert line.split(" upgrade --install ", 1)[1].split()[1] == key.replace("_", "-"), line
            assert flag(line, "--version") == pins[f"{key}_chart"], line
            assert flag(line, "--repo") == pins[f"{key}_repo"], line
        else:
            chart = line.split(" upgrade --install ", 1)[1].split()[1]
            assert " --repo " not in line and pathlib.Path(chart).is_dir(), line
    kps = next(line for line in upgrades if release(line) == "kube-prometheus-stack")
    assert str(KPS_VALUES) in kps
    logging = next(line for line in upgrades if release(line) == "logging")
    assert flag(logging, "--set") == f"version={pins['elastic_stack']}" and "deploy/logging/stack" in logging
    assert flag(logging, "-f").endswith("deploy/logging/values/stack-kind.yaml"), "the same kind values as Ansible's"
    assert "deploy/logging/values/eck-operator.yaml" in next(l for l in upgrades if release(l) == "elastic-operator")
    assert "deploy/logging/values/fluent-bit.yaml" in next(l for l in upgrades if release(l) == "fluent-bit")
    # Elasticsearch and Kibana are waited for before Fluent Bit ships to them
    waits = [i for i, line in enumerate(first) if "wait --for=jsonpath={.status.health}=green" in line]
    assert len(waits) == 2 and waits[-1] < first.index(next(l for l in upgrades if release(l) == "fluent-bit"))
    fs_line = next(line for line in upgrades if release(line) == "ferrostack")
    assert "deploy/ansible/values/ferrostack/common.yaml" in fs_line and "development.yaml" in fs_line
    assert "image.repository=ghcr.io/ferrostack/ferrostack " in fs_line + " " and "image.tag=dev" in fs_line
    # secrets that hold generated passwords are created once, only when absent
    created = [line for line in first if " create secret generic " in line and "--dry-run" not in line]
    assert any("grafana-admin" in line for line in created)
    assert all("--from-literal=admin-password=" in line for line in created if "grafana-admin" in line)
    users = {flag(line, "generic"): line for line in created if "--type=kubernetes.io/basic-auth" in line}
    assert sorted(users) == ["elasticsearch-elastic-user", "elasticsearch-fluent-bit-user"]
    assert "--from-literal=username=elastic " in users["elasticsearch-elastic-user"] + " "
    assert "--from-literal=roles=superuser" in users["elasticsearch-elastic-user"]
    assert "--from-literal=roles=ferrostack-logs-writer" in users["elasticsearch-fluent-bit-user"]
    # the chart's values name the same Secrets
    stack = yaml.safe_load((ROOT / "deploy" / "logging" / "stack" / "values.yaml").read_text())
    assert sorted(stack["elasticsearch"]["userSecrets"]) == sorted(users)

    # second run: the cluster exists and the secrets too -> no create, same installs (upgrade)
    (tmp_path / "cluster-exists.secrets").write_text("")
    second = run_up(env)
    assert not any(line.startswith("kind create cluster") for line in second)
    assert not any(" create secret generic " in line and "--dry-run" not in line for line in second)
    assert [release(line) for line in second if " upgrade --install " in line] == installs
    assert all("--wait" in line for line in second if " upgrade --install " in line)

    # an environment override still wins over the pin
    third = run_up(env, TRAEFIK_VERSION="1.2.3")
    assert flag(next(line for line in third if " upgrade --install traefik " in line), "--version") == "1.2.3"


def test_up_fails_clearly_without_tools(tmp_path):
    only = tmp_path / "bin"
    only.mkdir()
    for tool in ("dirname",):
        (only / tool).symlink_to(shutil.which(tool))
    res = subprocess.run(["/bin/bash", str(KIND / "up.sh")], env={"PATH": str(only), "HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 1 and "docker is required" in res.stderr


# --- kubeadm ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kubeadm_docs():
    text = (KUBEADM / "files" / "kubeadm-config.yaml").read_text()
    text = text.replace("__NODE_IP__", "192.168.121.10").replace("__POD_CIDR__", "10.244.0.0/16") \
        .replace("__NODE_NAME__", "control-plane")
    assert "__" not in text, "a placeholder the script does not fill"
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def args(section: dict) -> dict:
    return {a["name"]: a["value"] for a in section.get("extraArgs", [])}


def test_control_plane_metrics_bound_where_prometheus_scrapes(kubeadm_docs):
    values = yaml.safe_load(KPS_VALUES.read_text())
    cc = kubeadm_docs["ClusterConfiguration"]
    assert cc["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert args(cc["controllerManager"])["bind-address"] == "0.0.0.0"
    assert args(cc["scheduler"])["bind-address"] == "0.0.0.0"
    etcd = args(cc["etcd"]["local"])["listen-metrics-urls"]
    assert etcd == f"http://0.0.0.0:{values['kubeEtcd']['service']['port']}"
    proxy = kubeadm_docs["KubeProxyConfiguration"]["metricsBindAddress"]
    assert proxy == f"0.0.0.0:{values['kubeProxy']['service']['port']}"
    assert values["kubeControllerManager"]["service"]["port"] == 10257
    assert values["kubeScheduler"]["service"]["port"] == 10259
    assert kubeadm_docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    calico = (KUBEADM / "files" / "calico-installation.yaml").read_text()
    assert "cidr: __POD_CIDR__" in calico


def test_sysctls_and_limits():
    conf = {}
    for line in (KUBEADM / "files" / "sysctl-kubernetes.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = (p.strip() for p in line.split("=", 1))
            conf[key] = value
    assert conf["net.ipv4.ip_forward"] == "1"
    assert conf["net.bridge.bridge-nf-call-iptables"] == "1"
    assert int(conf["net.core.somaxconn"]) >= 4096
    low, high = map(int, conf["net.ipv4.ip_local_port_range"].split())
    assert 1024 <= low < high <= 65535
    assert int(conf["fs.file-max"]) >= 1048576
    modules = (KUBEADM / "files" / "modules-load-kubernetes.conf").read_text().split()
    assert "br_netfilter" in modules and "overlay" in modules
    limits = (KUBEADM / "files" / "limits-kubernetes.conf").read_text()
    assert re.search(r"^\*\s+hard\s+nofile\s+\d+", limits, re.M) and re.search(r"^\*\s+hard\s+nproc\s+\d+", limits, re.M)
    common = (KUBEADM / "scripts" / "common.sh").read_text()
    for installed in ("sysctl-kubernetes.conf", "limits-kubernetes.conf", "modules-load-kubernetes.conf",
                      "systemd-limits.conf", "SystemdCgroup = true", "apt-mark hold kubelet kubeadm kubectl"):
        assert installed in common, installed


def test_vagrantfile_nodes():
    vf = (KUBEADM / "Vagrantfile").read_text()
    assert re.search(r'provider :libvirt', vf)
    assert 'ENV.fetch("WORKERS", "2")' in vf
    assert re.search(r'define "control-plane".*?lv\.memory = 4096', vf, re.S)
    assert re.search(r'define "worker-#\{i\}".*?lv\.memory = 5192', vf, re.S)
    for script in ("common.sh", "control-plane.sh", "worker.sh"):
        assert f'"scripts/{script}"' in vf and (KUBEADM / "scripts" / script).exists()
    assert os.access(KUBEADM / "scripts" / "common.sh", os.X_OK)


RUBY_STUB = r"""
# A stand-in for Vagrant: runs the Vagrantfile and prints every node's provisioners as JSON.
require "json"
LOG = []
class Rec
  def initialize(node) = @node = node
  def respond_to_missing?(*) = true
  def method_missing(name, *args, **kw, &blk)
    case name
    when :define then blk.call(Rec.new(args[0]))
    when :provision then LOG << { "node" => @node, "script" => kw[:path], "env" => kw[:env] }
    else blk&.call(Rec.new(@node))
    end
    Rec.new(@node)
  end
end
module Vagrant
  def self.configure(_version, &blk) = blk.call(Rec.new(nil))
end
load ARGV.fetch(0)
puts JSON.generate(LOG)
"""


def test_vagrantfile_passes_the_pinned_versions(tmp_path):
    """The Vagrantfile run by Ruby with a stub Vagrant: each node gets common.sh with the
    Kubernetes minor, containerd and runc of deploy/versions.yaml, the control plane gets Calico's."""
    ruby = shutil.which("ruby")
    assert ruby, "ruby missing: make test-platform installs it"
    stub = tmp_path / "vagrant_stub.rb"
    stub.write_text(RUBY_STUB)
    res = subprocess.run([ruby, str(stub), str(KUBEADM / "Vagrantfile")], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    calls = json.loads(res.stdout)
    pins = versions()
    assert [(c["node"], c["script"]) for c in calls] == [
        ("control-plane", "scripts/common.sh"), ("control-plane", "scripts/control-plane.sh"),
        ("worker-1", "scripts/common.sh"), ("worker-1", "scripts/worker.sh"),
        ("worker-2", "scripts/common.sh"), ("worker-2", "scripts/worker.sh")]
    for call in calls:
        env = call["env"]
        if call["script"] == "scripts/common.sh":
            assert (env["K8S_MINOR"], env["CONTAINERD_VERSION"], env["RUNC_VERSION"]) == (
                pins["kubernetes_minor"], pins["containerd"], pins["runc"])
        if call["script"] == "scripts/control-plane.sh":
            assert env["CALICO_VERSION"] == pins["calico"]
            assert env["LOCAL_PATH_PROVISIONER_VERSION"] == pins["local_path_provisioner"]
    for script in ("common.sh", "control-plane.sh"):
        text = (KUBEADM / "scripts" / script).read_text()
        for var in re.findall(r'"\$\{(\w+_VERSION|K8S_MINOR):\?', text):
            assert any(var in c["env"] for c in calls if c["script"].endswith(script)), (script, var)
        assert not re.search(r"(CALICO|CONTAINERD|RUNC)_VERSION:-", text), "no second pin as a default"


def test_containerd_and_calico_install_steps():
    common = (KUBEADM / "scripts" / "common.sh").read_text()
    # the upstream release, checked against the checksum file published with it
    assert "containerd/releases/download/v$CONTAINERD_VERSION" in common
    assert "opencontainers/runc/releases/download/$RUNC_VERSION" in common
    assert common.count("sha256sum --check --strict") == 2
    assert "containerd.io" not in common, "no distribution containerd (too old for Kubernetes 1.36+)"
    control = (KUBEADM / "scripts" / "control-plane.sh").read_text()
    crds, operator = control.index("operator-crds.yaml"), control.index("tigera-operator.yaml")
    wait = control.index("crd/installations.operator.tigera.io")
    assert crds < wait < control.index("calico-installation.yaml") and crds < operator, \
        "Calico 3.30+ ships its CRDs apart from the operator: CRDs first"


def test_cluster_ca_chain():
    """selfsigned ClusterIssuer -> CA Certificate in cert-manager's namespace -> ClusterIssuer
    ferrostack-ca (what the logging chart's HTTPS certificates reference)."""
    docs = list(yaml.safe_load_all((KIND / "cluster-issuer.yaml").read_text()))
    issuers = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterIssuer"}
    (ca,) = [d for d in docs if d["kind"] == "Certificate"]
    assert "selfSigned" in issuers[ca["spec"]["issuerRef"]["name"]]["spec"]
    assert ca["spec"]["isCA"] is True and ca["metadata"]["namespace"] == "cert-manager"
    assert issuers["ferrostack-ca"]["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]
    logging_certs = [d for d in template(ROOT / "deploy" / "logging" / "stack", "logging", "logging")
                     if d["kind"] == "Certificate"]
    assert logging_certs and {c["spec"]["issuerRef"]["name"] for c in logging_certs} == {"ferrostack-ca"}
