"""Every external version the platform pins lives in deploy/versions.yaml. The installers read
it (deploy/kind/up.sh, the Ansible group_vars, the kubeadm Vagrantfile; their own tests check
what they install); the few files that cannot read it carry a copy that must be equal; and no
pinned value appears anywhere else, so a bump is one line and cannot leave a stale copy behind."""
import pathlib
import re
import subprocess

import pytest
import yaml

from charts import VERSIONS_FILE, versions
from conftest import ROOT

# Files that cannot read versions.yaml and therefore carry a pin, and how to find it there.
CARRIERS = {
    "elastic_stack": {
        "deploy/logging/stack/values.yaml": lambda t: yaml.safe_load(t)["version"],
        "deploy/logging/stack/Chart.yaml": lambda t: yaml.safe_load(t)["appVersion"],
    },
    "buildah": {
        "deploy/jenkins/agent-pod.yaml": lambda t: _image(t, "buildah").removeprefix("quay.io/buildah/stable:"),
    },
    "pause": {
        "deploy/autoscaling/headroom.yaml": lambda t: next(
            d for d in yaml.safe_load_all(t) if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
            "image"].removeprefix("registry.k8s.io/pause:"),
    },
    "helm_cli": {"deploy/jenkins/deployer/Containerfile": lambda t: _arg(t, "HELM_VERSION"),
                 "deploy/cluster/helm/go.mod": lambda t: _go_require(t, "helm.sh/helm/v3")},
    "kubectl_cli": {"deploy/jenkins/deployer/Containerfile": lambda t: _arg(t, "KUBECTL_VERSION")},
    # The control plane's Go modules (scripts/cluster.sh also refuses to build on drift).
    "kubernetes": {"deploy/cluster/go.mod": lambda t: _go_require(t, "k8s.io/kubernetes")},
    "etcd": {"deploy/cluster/go.mod": lambda t: _go_require(t, "go.etcd.io/etcd/server/v3")},
    "kwok": {"deploy/cluster/kwok/go.mod": lambda t: _go_require(t, "sigs.k8s.io/kwok")},
    "blackbox_exporter": {"deploy/cluster/blackbox/go.mod":
                          lambda t: _go_require(t, "github.com/prometheus/blackbox_exporter")},
    "grpc_health_probe": {"deploy/cluster/grpc-health-probe/go.mod":
                          lambda t: _go_require(t, "github.com/grpc-ecosystem/grpc-health-probe")},
    "rust": {
        "Cargo.toml": lambda t: re.search(r'^rust-version = "([^"]+)"', t, re.M).group(1),
        "deploy/Dockerfile": lambda t: _arg(t, "RUST_VERSION"),
        "deploy/jenkins/agent-pod.yaml": lambda t: re.fullmatch(r"docker\.io/library/rust:([\d.]+)-\w+",
                                                                _image(t, "rust")).group(1),
    },
}


def _image(text: str, container: str) -> str:
    return next(c["image"] for c in yaml.safe_load(text)["spec"]["containers"] if c["name"] == container)


def _go_require(text: str, module: str) -> str:
    return re.search(rf"^(?:require )?\s*{re.escape(module)} (v\S+)$", text, re.M).group(1)


def test_kubernetes_staging_modules_are_replaced_at_the_same_release():
    """k8s.io/kubernetes v1.X.Y builds only with every k8s.io staging module at v0.X.Y."""
    text = (ROOT / "deploy" / "cluster" / "go.mod").read_text()
    want = "v0." + versions()["kubernetes"].removeprefix("v1.")
    replaced = set(re.findall(r"=> k8s\.io/[\w.-]+ (v\S+)", text))
    assert replaced == {want}, replaced


def _arg(text: str, name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", text, re.M).group(1)


def test_versions_file_is_flat_strings_that_up_sh_can_read():
    pins = versions()
    lines = [ln for ln in VERSIONS_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    keys = []
    for line in lines:
        m = re.fullmatch(r'([a-z][a-z0-9_]*): ("?)([^"\s#]+)\2', line)
        assert m, f"not a flat `key: value` line: {line!r}"
        keys.append(m.group(1))
        assert m.group(3) == pins[m.group(1)], line
    assert len(keys) == len(set(keys)), "a key twice (YAML keeps only the last)"
    assert all(isinstance(v, str) for v in pins.values()), {k: v for k, v in pins.items() if not isinstance(v, str)}
    for key in pins:
        if key.endswith("_chart"):
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", pins[key]), key
            assert re.fullmatch(r"(https|oci)://\S+", pins[key[:-6] + "_repo"]), key
        elif key.endswith("_repo"):
            assert key[:-5] + "_chart" in pins, key


def test_up_sh_reads_the_same_values():
    """up.sh's own reader (awk) gives what YAML gives, quoted values included."""
    pins = versions()
    script = (ROOT / "deploy" / "kind" / "up.sh").read_text()
    reader = re.search(r"^pin\(\) \{\n(.*?)\n\}", script, re.M | re.S)
    assert reader, "up.sh defines pin()"
    for key, value in pins.items():
        out = subprocess.run(["bash", "-c", f"set -euo pipefail; versions={VERSIONS_FILE}; pin() {{\n"
                              f"{reader.group(1)}\n}}; pin {key}"], capture_output=True, text=True, check=False)
        assert out.returncode == 0 and out.stdout.strip() == value, (key, out.stdout, out.stderr)
    out = subprocess.run(["bash", "-c", f"versions={VERSIONS_FILE}; pin() {{\n{reader.group(1)}\n}}; pin nope"],
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "nope is missing" in out.stderr


@pytest.mark.parametrize("key", sorted(CARRIERS))
def test_carried_copies_are_equal(key):
    pins = versions()
    for path, extract in CARRIERS[key].items():
        assert extract((ROOT / path).read_text()) == pins[key], f"{path} carries another {key}"


def test_ci_rust_toolchain_is_the_pinned_one():
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    (ref,) = set(re.findall(r"dtolnay/rust-toolchain@[0-9a-f]{40} # (\S+)", text))
    assert ref == versions()["rust"] or ref.startswith(versions()["rust"] + "."), ref


def test_deployer_python_client_matches_kubectl():
    """kubernetes (Python) N.x is generated from Kubernetes 1.N: the same minor as the kubectl."""
    text = (ROOT / "deploy" / "jenkins" / "deployer" / "Containerfile").read_text()
    client = re.search(r"kubernetes==(\d+)\.", text).group(1)
    assert versions()["kubectl_cli"].startswith(f"v1.{client}."), client


# A package manager's lock file pins its own dependency tree (written by npm, pip freeze, go; a
# go.mod's indirect requirements too): a number there that equals one of ours is a coincidence of
# that tree, not a stray copy. The go.mod files' own pins are CARRIERS, checked above.
LOCK_FILES = {"package-lock.json", "constraints.txt", "go.sum", "go.mod"}


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "deploy", ".github", "scripts", "Makefile",
                          "Cargo.toml"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if (ROOT / f).is_file() and not f.startswith("deploy/tests/")
            and (ROOT / f).name not in LOCK_FILES]


def test_no_pinned_value_appears_anywhere_else():
    pins = {k: v for k, v in versions().items() if not k.endswith("_repo")}
    stray = []
    for path in tracked_files():
        if path == VERSIONS_FILE:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        rel = str(path.relative_to(ROOT))
        for key, value in pins.items():
            if rel in CARRIERS.get(key, {}):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])", line):
                    stray.append(f"{rel}:{n}: {key} {value}")
    assert not stray, "pins outside deploy/versions.yaml (read it, or register a checked carrier): " + "; ".join(stray)


def test_readers_hold_no_version_literals():
    """The installers name versions only through versions.yaml: no semantic version literal."""
    readers = [ROOT / "deploy" / "kind" / "up.sh", ROOT / "deploy" / "kubeadm" / "Vagrantfile",
               *sorted((ROOT / "deploy" / "kubeadm" / "scripts").glob("*.sh")),
               *sorted((ROOT / "deploy" / "ansible" / "playbooks").glob("*.yml")),
               *sorted((ROOT / "deploy" / "ansible" / "inventory" / "group_vars").glob("*.yml"))]
    for path in readers:
        code = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
        found = [v for v in re.findall(r"(?<![\w.])v?\d+\.\d+\.\d+(?![\w.])", code)
                 if int(v.lstrip("v").split(".")[0]) < 100]      # 192.168.121 is a network, not a version
        assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_every_pin_is_used():
    pins = versions()
    users = "\n".join(p.read_text(errors="replace") for p in map(pathlib.Path, tracked_files()) if p != VERSIONS_FILE)
    for key in pins:
        if key.endswith("_repo"):
            continue            # read with its _chart (up.sh builds the key; test_cluster/test_ansible check URLs)
        if key.endswith("_chart"):
            assert key in users, key
        else:
            assert key in users or key in CARRIERS, key
