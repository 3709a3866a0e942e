"""The webhook's scope is opt-in: in every environment its configurations select only namespaces
labelled ferrostack.io/admission=enforce, so the platform's own pods, which the enforced
defaults deny (`ferrostack webhook check` shows it), never reach it."""
import subprocess

import pytest
import yaml

from conftest import CHART, ROOT, ferrostack_binary, find, helm

ANSIBLE = ROOT / "deploy" / "ansible"
VALUES = ANSIBLE / "values" / "ferrostack"
GROUP_VARS = ANSIBLE / "inventory" / "group_vars"
LABEL = {"ferrostack.io/admission": "enforce"}


def environments():
    """(name, rendered docs, release namespace) per Ansible environment, plus the kind profile."""
    out = []
    for env in ("development", "staging", "production"):
        namespace = yaml.safe_load((GROUP_VARS / f"{env}.yml").read_text())["ferrostack_namespace"]
        docs = helm("template", "ferrostack", str(CHART), "--namespace", namespace,
                    "-f", str(VALUES / "common.yaml"), "-f", str(VALUES / f"{env}.yaml"),
                    "--set", "webhook.enabled=true").stdout
        out.append((env, [d for d in yaml.safe_load_all(docs) if d], namespace))
    kind = helm("template", "ferrostack", str(CHART), "--namespace", "ferrostack",
                "-f", str(CHART / "ci" / "kind-values.yaml")).stdout
    out.append(("kind", [d for d in yaml.safe_load_all(kind) if d], "ferrostack"))
    return out


ENVIRONMENTS = environments()


def platform_namespaces():
    """Every namespace the platform installs into (group_vars, deploy/kind/up.sh), with the
    labels deploy/ gives it and the one the API server adds."""
    names = {"kube-system", "ferrostack", "ferrostack-staging"}
    for key, value in yaml.safe_load((GROUP_VARS / "all.yml").read_text()).items():
        if key.endswith("_namespace"):
            names.add(value)
    labels = {n: {} for n in names}
    ns_doc = yaml.safe_load((ROOT / "deploy" / "logging" / "namespace.yaml").read_text())
    labels[ns_doc["metadata"]["name"]] = dict(ns_doc["metadata"].get("labels") or {})
    return {n: {**l, "kubernetes.io/metadata.name": n} for n, l in labels.items()}


def selects(selector, labels):
    """metav1.LabelSelector semantics, as the API server applies a namespaceSelector."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for e in selector.get("matchExpressions") or []:
        have, op = labels.get(e["key"]), e["operator"]
        if ((op == "In" and have not in e["values"]) or (op == "NotIn" and have in e["values"])
                or (op == "Exists" and have is None) or (op == "DoesNotExist" and have is not None)):
            return False
    return True


def selectors(docs):
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for config in find(docs, kind):
            for hook in config["webhooks"]:
                yield hook["name"], hook["namespaceSelector"]


@pytest.mark.parametrize("env,docs,home", ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_only_labelled_namespaces_are_reviewed(env, docs, home):
    hooks = list(selectors(docs))
    assert len(hooks) == 3, env
    for name, selector in hooks:
        for ns, labels in platform_namespaces().items():
            assert not selects(selector, labels), (env, name, ns)
    # A workload namespace that opts in is reviewed by exactly one validating entry (the
    # priority label splits them) and by the mutating one.
    opted = {"kubernetes.io/metadata.name": "shop", **LABEL}
    assert sum(selects(s, opted) for _, s in hooks) == 2, env
    # Even labelled, the webhook's own namespace is not.
    home_labels = {"kubernetes.io/metadata.name": home, **LABEL}
    assert not any(selects(s, home_labels) for _, s in hooks), env


# Platform manifests kept in deploy/ (the upstream charts themselves are not pulled here: no
# Helm repository is reachable from this machine) and the namespace each runs in.
PLATFORM_MANIFESTS = {"deploy/jenkins/agent-pod.yaml": "jenkins",
                      "deploy/autoscaling/headroom.yaml": "ferrostack"}


@pytest.mark.parametrize("path,namespace", sorted(PLATFORM_MANIFESTS.items()))
def test_platform_pods_the_policies_deny_are_out_of_scope(path, namespace):
    out = subprocess.run([ferrostack_binary(), "webhook", "check", str(ROOT / path)],
                         capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    if out.returncode == 1:
        # Denied if it were reviewed (e.g. the Jenkins agent: root, added capabilities), so
        # its namespace must be outside every environment's scope.
        labels = {**platform_namespaces()[namespace], "kubernetes.io/metadata.name": namespace}
        for env, docs, _ in ENVIRONMENTS:
            assert not any(selects(s, labels) for _, s in selectors(docs)), (env, path)


def test_the_jenkins_agent_would_be_denied():
    """The reason for the opt-in scope, kept true: remove this only with the agent fixed."""
    out = subprocess.run([ferrostack_binary(), "webhook", "check",
                          str(ROOT / "deploy" / "jenkins" / "agent-pod.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "error[pod-security]" in out.stdout
