"""What the project ships, as the API server would receive it: the chart in each profile and each
Ansible environment, the logging chart and the YAML under deploy/; and the upstream CRDs that
judge its custom resources (scripts/crds.sh). Shared by test_crds and test_chart_install."""
import functools
import re

import pytest
import yaml

from conftest import CHART, ROOT, helm_template

CRDS = ROOT / ".tools" / "crds"
DEPLOY = ROOT / "deploy"
ANSIBLE_VALUES = DEPLOY / "ansible" / "values" / "ferrostack"
LOGGING = DEPLOY / "logging"
# Built-in API groups with a dot in their name (the rest of a dotted group is a CRD's).
BUILTIN_GROUPS = {"admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io",
                  "networking.k8s.io", "rbac.authorization.k8s.io", "scheduling.k8s.io",
                  "storage.k8s.io", "node.k8s.io", "discovery.k8s.io", "coordination.k8s.io",
                  "flowcontrol.apiserver.k8s.io", "certificates.k8s.io", "resource.k8s.io",
                  "events.k8s.io"}
# Files a tool reads (kind, kubeadm, kubelet, kube-proxy), not API objects.
CONFIG_GROUPS = {"kind.x-k8s.io", "kubeadm.k8s.io", "kubelet.config.k8s.io",
                 "kubeproxy.config.k8s.io"}


def chart_sources():
    """The chart as each profile renders it, and as Ansible deploys it per environment (common
    values, then the environment's, deep-merged as the playbook's combine(recursive=True))."""
    sources = {"chart-default": helm_template("fs", CHART, "dev")}
    for profile in ("kind", "full"):
        sources[f"chart-{profile}"] = helm_template(
            "fs", CHART, "dev", "-f", CHART / "ci" / f"{profile}-values.yaml")
    # The HTTPRoute is for clusters with a Gateway of their own (no profile has one).
    sources["chart-httproute"] = helm_template(
        "fs", CHART, "dev", "--set", "httpRoute.enabled=true",
        "--set", "httpRoute.parentRefs[0].name=web", "--set", "httpRoute.parentRefs[0].namespace=gateway")
    for env in ("development", "staging", "production"):
        sources[f"ansible-{env}"] = helm_template(
            "ferrostack", CHART, "ferrostack", "-f", ANSIBLE_VALUES / "common.yaml",
            "-f", ANSIBLE_VALUES / f"{env}.yaml")
    return sources


def logging_sources():
    """deploy/logging/stack as installed (cluster CA certificates) on kind and elsewhere, and with
    ECK's self-signed certificates (tls.clusterIssuer empty)."""
    stack = LOGGING / "stack"
    return {"logging-default": helm_template("logging", stack, "logging"),
            "logging-kind": helm_template("logging", stack, "logging",
                                          "-f", LOGGING / "values" / "stack-kind.yaml"),
            "logging-self-signed": helm_template("logging", stack, "logging",
                                                 "--set", "tls.clusterIssuer=")}


def file_sources():
    """Every YAML file under deploy/ that holds API objects (charts and tests excepted), with the
    placeholders the installers fill (control-plane.sh's default pod CIDR)."""
    script = (DEPLOY / "kubeadm" / "scripts" / "control-plane.sh").read_text()
    pod_cidr = re.search(r"POD_CIDR=\$\{POD_CIDR:-([^}]+)\}", script).group(1)
    sources = {}
    for path in sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]):
        rel = path.relative_to(DEPLOY)
        if rel.parts[0] in ("tests", "helm") or rel.parts[:2] == ("logging", "stack"):
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text().replace("__POD_CIDR__", pod_cidr)))
        except yaml.YAMLError:
            continue
        objects = [d for d in docs if isinstance(d, dict) and {"apiVersion", "kind"} <= d.keys()]
        if objects:
            sources[str(rel)] = objects
    return sources


def group(doc):
    return doc["apiVersion"].rpartition("/")[0]


@functools.lru_cache(maxsize=None)
def api_objects():
    """(source, document) of every API object shipped (tools' config files excepted), rendered
    once per session."""
    sources = {**chart_sources(), **logging_sources(), **file_sources()}
    return tuple((src, d) for src, docs in sources.items() for d in docs
                 if group(d) not in CONFIG_GROUPS)


def custom_objects():
    """The custom resources among them."""
    return tuple((src, d) for src, d in api_objects()
                 if "." in group(d) and group(d) not in BUILTIN_GROUPS)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader (libyaml's: 16 MB of CRDs take 2 s, not 40) that also reads the `=` (YAML
    1.1 "value") scalar some upstream CRD schemas hold."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def upstream_crds():
    """(group, kind) -> the CRD document, from every file scripts/crds.sh put in .tools/crds."""
    files = sorted(CRDS.glob("*/*.y*ml"))
    if len({f.parent.name for f in files}) < 9:
        pytest.fail(f"{CRDS} is not complete: run `make crds` (scripts/crds.sh)")
    return {(d["spec"]["group"], d["spec"]["names"]["kind"]): d for f in files
            for d in yaml.load_all(f.read_text(), Loader=_Loader)
            if d and d.get("kind") == "CustomResourceDefinition"}
