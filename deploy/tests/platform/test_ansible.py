"""Ansible: structure, the per-environment values against the chart's schema, and the Helm
playbooks run for real against a recording stand-in for the `helm` binary, which proves the
kubernetes.core.helm options are valid (syntax-check and ansible-lint do not check module
options) and shows the exact helm commands each environment gets."""
import copy
import json
import os
import pathlib
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from charts import template, versions
from conftest import ROOT

ANSIBLE = ROOT / "deploy" / "ansible"
VENV_BIN = pathlib.Path(sys.executable).parent
ENVIRONMENTS = ["development", "staging", "production"]

FAKE_HELM = r'''#!PYTHON
"""Stand-in for helm: records each call and keeps releases and repositories in a state file,
answering what kubernetes.core reads back (list, get values, show chart, repo list)."""
import json, os, sys
import yaml
args = sys.argv[1:]
state_path = os.environ["FAKE_HELM_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"releases": {}, "repos": {}}
record = {"args": args, "env": {k: os.environ.get(k) for k in ("HELM_NAMESPACE", "HELM_KUBECONTEXT", "KUBECONFIG")},
          "files": {}}
values = {}
for a in args:
    for prefix in ("--values=", "-f="):
        if a.startswith(prefix):
            path = a[len(prefix):]
            if not os.path.isfile(path):
                sys.exit("values file missing: " + path)
            text = open(path).read()
            if prefix == "-f=":
                record["files"][path] = text
            values.update(yaml.safe_load(text) or {})
with open(os.environ["FAKE_HELM_LOG"], "a") as log:
    log.write(repr(record) + "\n")
version = next((a.split("=", 1)[1] for a in args if a.startswith("--version=")), None)
words = [a for a in args if not a.startswith("-")]
def chart(ref):
    meta = os.path.join(ref, "Chart.yaml")
    if os.path.isfile(meta):
        c = yaml.safe_load(open(meta))
        return {"name": c["name"], "version": str(c["version"])}
    return {"name": ref.rsplit("/", 1)[-1], "version": version or "0.0.0"}
if args[:1] == ["version"]:
    print('version.BuildInfo{Version:"v3.17.3", GitCommit:"0", GitTreeState:"clean", GoVersion:"go1.23"}')
elif words[:2] == ["plugin", "list"]:
    print("NAME\tVERSION\tDESCRIPTION")   # no helm-diff: kubernetes.core's own comparison decides
elif words[:2] == ["repo", "list"]:
    print(yaml.safe_dump([{"name": n, "url": u} for n, u in state["repos"].items()]))
elif words[:2] == ["repo", "add"]:
    state["repos"][words[2]] = words[3]
elif words[:1] == ["list"]:
    name = args[args.index("--filter") + 1]
    rel = state["releases"].get(name)
    print(yaml.safe_dump([{"name": name, "namespace": rel["namespace"], "revision": "1", "status": "deployed",
                           "chart": rel["chart"], "app_version": ""}] if rel else []))
elif words[:2] == ["show", "chart"]:
    print(yaml.safe_dump(chart(words[2])))
elif words[:2] == ["get", "values"]:
    print(yaml.safe_dump(state["releases"][words[2]]["values"]))
elif words[:1] == ["upgrade"]:
    c = chart(words[-1])
    state["releases"][words[-2]] = {"values": values, "chart": c["name"] + "-" + c["version"],
                                    "namespace": os.environ.get("HELM_NAMESPACE")}
json.dump(state, open(state_path, "w"))
'''



@pytest.fixture(scope="module")
def fake_helm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("helm")
    helm = tmp / "helm"
    helm.write_text(FAKE_HELM.replace("PYTHON", sys.executable))
    helm.chmod(0o755)
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    return tmp, kubeconfig


def run_playbook(fake_helm, playbook: str, limit: str, *extra: str) -> list[dict]:
    tmp, kubeconfig = fake_helm
    log = tmp / f"{playbook}-{limit}.log"
    log.write_text("")
    state = tmp / f"state-{limit}.json"
    env = {
        "PATH": f"{tmp}:{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp),
        "KUBECONFIG": str(kubeconfig),
        "FAKE_HELM_LOG": str(log),
        "FAKE_HELM_STATE": str(state),
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    res = subprocess.run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{playbook}", "-l", limit, *extra],
                         cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    calls = [eval(line) for line in log.read_text().splitlines()]  # noqa: S307 - our own repr() lines
    recap = re.search(r"changed=(\d+)", res.stdout)
    return calls, int(recap.group(1))


def upgrades(calls):
    return [c for c in calls if [a for a in c["args"] if not a.startswith("--version")][:2] == ["upgrade", "-i"]]


def group_vars(env):
    return yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / f"{env}.yml").read_text())


def load(path):
    return yaml.safe_load(pathlib.Path(path).read_text())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ferrostack_playbook_deploys_each_environment_idempotently(fake_helm, env):
    calls, changed = run_playbook(fake_helm, "ferrostack.yml", env, "-e", "ferrostack_image_tag=0123abc")
    (up,) = upgrades(calls)
    args = up["args"]
    assert args[-2] == "ferrostack" and pathlib.Path(args[-1]).resolve() == ROOT / "deploy" / "helm" / "ferrostack"
    for flag in ("--wait", "--atomic", "--create-namespace"):
        assert flag in args, flag
    assert up["env"]["HELM_NAMESPACE"] == group_vars(env)["ferrostack_namespace"]
    assert up["env"]["HELM_KUBECONTEXT"] == group_vars(env)["kube_context"]
    assert up["env"]["KUBECONFIG"], "the kubeconfig (a copy of $KUBECONFIG) reaches helm"
    # common values, deep-merged with the environment's, then the image from the pipeline
    (values,) = [yaml.safe_load(text) for text in up["files"].values()]
    vdir = ANSIBLE / "values" / "ferrostack"
    expected = deep_merge(deep_merge(load(vdir / "common.yaml"), load(vdir / f"{env}.yaml")),
                          {"image": {"repository": "ghcr.io/ferrostack/ferrostack", "tag": "0123abc"}})
    assert values == expected
    assert changed == 1
    if env != "production":
        return
    # the same deploy again: nothing to do, no helm upgrade
    again, changed = run_playbook(fake_helm, "ferrostack.yml", env, "-e", "ferrostack_image_tag=0123abc")
    assert upgrades(again) == [] and changed == 0
    # a new image tag is a change
    newer, changed = run_playbook(fake_helm, "ferrostack.yml", env, "-e", "ferrostack_image_tag=4567def")
    assert len(upgrades(newer)) == 1 and changed == 1


def test_platform_charts_are_pinned_waited_for_and_idempotent(fake_helm):
    calls = run_playbook(fake_helm, "ingress.yml", "staging")[0] + \
        run_playbook(fake_helm, "metrics_server.yml", "production")[0]
    ups = upgrades(calls)
    assert [u["args"][-2] for u in ups] == ["traefik", "metrics-server"]
    for up in ups:
        assert any(a.startswith("--version=") for a in up["args"]) and "--wait" in up["args"]
    assert [u["env"]["HELM_NAMESPACE"] for u in ups] == ["ingress", "kube-system"]
    # each playbook adds the repositories of its own charts, with deploy/versions.yaml's URLs
    pins = versions()
    repos = {c["args"][2]: c["args"][3] for c in calls if c["args"][:2] == ["repo", "add"]}
    assert repos == {"traefik": pins["traefik_repo"], "metrics-server": pins["metrics_server_repo"]}
    assert [next(a for a in u["args"] if a.startswith("--version=")) for u in ups] == [
        f"--version={pins['traefik_chart']}", f"--version={pins['metrics_server_chart']}"]
    # Traefik: the shared values deep-merged with staging's own (test_platform_install.py checks
    # what each environment's nodes need)
    traefik = ANSIBLE / "values" / "traefik"
    assert yaml.safe_load(next(iter(ups[0]["files"].values()))) == deep_merge(load(traefik / "common.yaml"),
                                                                             load(traefik / "staging.yaml"))
    # kind needs --kubelet-insecure-tls, production must not get it
    (dev,) = upgrades(run_playbook(fake_helm, "metrics_server.yml", "development")[0])
    assert "--kubelet-insecure-tls" in json.dumps(dev["files"])
    assert "--kubelet-insecure-tls" not in json.dumps(ups[1]["files"])
    # second run of the ingress playbook: repositories known, release unchanged
    again, changed = run_playbook(fake_helm, "ingress.yml", "staging")
    assert upgrades(again) == [] and changed == 0


def test_every_environment_has_values_and_group_vars():
    inventory = yaml.safe_load((ANSIBLE / "inventory" / "hosts.yml").read_text())
    assert sorted(inventory["all"]["children"]) == sorted(ENVIRONMENTS)
    for env in ENVIRONMENTS:
        gv = yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / f"{env}.yml").read_text())
        assert gv["environment_name"] == env and gv["kube_context"]
        assert (ANSIBLE / "values" / "ferrostack" / f"{env}.yaml").is_file()


def test_generated_passwords_are_created_only_when_absent():
    for name in ("monitoring.yml", "logging.yml"):
        plays = yaml.safe_load((ANSIBLE / "playbooks" / name).read_text())
        for task in plays[0]["tasks"]:
            text = json.dumps(task)
            if "ansible.builtin.password" in text:
                assert "when" in task and "length == 0" in task["when"], task["name"]
                assert task.get("no_log") is True, task["name"]


def deep_merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_values_fit_the_chart_schema(env):
    chart = ROOT / "deploy" / "helm" / "ferrostack"
    schema = json.loads((chart / "values.schema.json").read_text())
    merged = yaml.safe_load((chart / "values.yaml").read_text())
    for part in ("common.yaml", f"{env}.yaml"):
        merged = deep_merge(merged, yaml.safe_load((ANSIBLE / "values" / "ferrostack" / part).read_text()))
    merged = deep_merge(merged, {"image": {"tag": "0123abc"}})
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]
    assert not errors, errors


def playbook_tasks():
    for path in sorted((ANSIBLE / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()):
            for task in play.get("tasks", []):
                yield path.name, play, task


def test_every_helm_release_is_pinned_in_versions_yaml_waited_for_and_from_its_repository():
    """Static check of every kubernetes.core.helm task (the logging, monitoring and Jenkins
    playbooks also talk to the API, so they cannot run against the helm stand-in): the chart
    version is the group_vars variable bound to deploy/versions.yaml, the repository is added by
    the same playbook with the pinned URL, the release waits, and local charts exist."""
    all_vars = yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / "all.yml").read_text())
    pins = versions()
    seen = set()
    for name, play, task in playbook_tasks():
        helm = task.get("kubernetes.core.helm")
        if not helm:
            continue
        assert helm.get("wait") is True and helm.get("release_namespace"), (name, task["name"])
        ref = helm["chart_ref"]
        if ref.startswith("{{"):     # a chart of this repository
            local = ref.replace("{{ logging_dir }}", str(ROOT / "deploy" / "logging")) \
                .replace("{{ ferrostack_chart }}", str(ROOT / "deploy" / "helm" / "ferrostack"))
            assert (pathlib.Path(local) / "Chart.yaml").is_file(), ref
            continue
        repo, chart = ref.split("/")
        key = chart.replace("-", "_")
        var = re.fullmatch(r"\{\{ (\w+) \}\}", helm["chart_version"]).group(1)
        assert all_vars[var] == f"{{{{ platform_versions.{key}_chart }}}}", (name, var)
        added = {}
        for t in play["tasks"]:
            r = t.get("kubernetes.core.helm_repository")
            if r:
                for item in t.get("loop") or [{"name": r["name"], "url": r["repo_url"]}]:
                    added[item["name"]] = item["url"]
        url = re.fullmatch(r"\{\{ platform_versions\.(\w+_repo) \}\}", added.get(repo, ""))
        assert url and pins[url.group(1)] == pins[f"{key}_repo"], (name, repo, added)
        assert f"{key}_chart" in pins and f"{key}_repo" in pins
        seen.add(key)
    assert seen == {k[:-6] for k in pins if k.endswith("_chart")} - {"karpenter"}, \
        "every pinned chart but Karpenter (EKS only) is deployed by a playbook"


def test_group_vars_resolve_to_the_pins():
    """Ansible itself resolves the version variables from deploy/versions.yaml."""
    tmp = pathlib.Path(os.environ.get("TMPDIR", "/tmp"))
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp), "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
           "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"), "ANSIBLE_NOCOLOR": "1"}
    names = ["eck_operator_chart_version", "fluent_bit_chart_version", "elastic_stack_version", "jenkins_chart_version"]
    res = subprocess.run([str(VENV_BIN / "ansible"), "production-cluster", "--playbook-dir", "playbooks", "-m",
                          "ansible.builtin.debug", "-a", "msg={{ [" + ", ".join(names) + "] | to_json }}"],
                         cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    pins = versions()
    got = json.loads(json.loads(res.stdout.split("=>", 1)[1])["msg"])
    assert got == [pins["eck_operator_chart"], pins["fluent_bit_chart"], pins["elastic_stack"], pins["jenkins_chart"]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_logging_chart_values_per_environment(env, tmp_path):
    """Ansible resolves the logging chart's values: the environment's overrides plus the pinned
    Elastic Stack version; they pass the chart's schema and render."""
    ansible_env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
                   "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "a"),
                   "ANSIBLE_NOCOLOR": "1"}
    host = yaml.safe_load((ANSIBLE / "inventory" / "hosts.yml").read_text())["all"]["children"][env]["hosts"]
    res = subprocess.run([str(VENV_BIN / "ansible"), next(iter(host)), "--playbook-dir", "playbooks", "-m",
                          "ansible.builtin.debug", "-a", "msg={{ logging_stack_values | to_json }}"],
                         cwd=ANSIBLE, env=ansible_env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    values = json.loads(json.loads(res.stdout.split("=>", 1)[1])["msg"])
    assert values["version"] == versions()["elastic_stack"]
    overrides = group_vars(env)["logging_stack_overrides"]
    if env == "development":
        kind = load(ROOT / "deploy" / "logging" / "values" / "stack-kind.yaml")
        assert overrides.endswith("deploy/logging/values/stack-kind.yaml") and values == {**kind, "version": values["version"]}
    else:
        assert overrides == "" and values == {"version": versions()["elastic_stack"]}
    doc = tmp_path / "values.json"
    doc.write_text(json.dumps(values))
    docs = template(ROOT / "deploy" / "logging" / "stack", "logging", "logging", [doc])
    (es,) = [d for d in docs if d["kind"] == "Elasticsearch"]
    assert es["spec"]["version"] == versions()["elastic_stack"]


def test_logging_playbook_order_and_users():
    plays = yaml.safe_load((ANSIBLE / "playbooks" / "logging.yml").read_text())
    tasks = plays[0]["tasks"]
    order = [t.get("kubernetes.core.helm", {}).get("release_name") for t in tasks]
    releases = [r for r in order if r]
    assert releases == ["elastic-operator", "logging", "fluent-bit"]
    names = [t["name"] for t in tasks]
    health = next(i for i, t in enumerate(tasks) if "until" in t)
    assert order.index("logging") < health < order.index("fluent-bit"), "Fluent Bit after Elasticsearch is green"
    users = {u["secret"]: u for u in plays[0]["vars"]["logging_users"]}
    stack = yaml.safe_load((ROOT / "deploy" / "logging" / "stack" / "values.yaml").read_text())
    assert sorted(users) == sorted(stack["elasticsearch"]["userSecrets"])
    assert users[stack["setup"]["credentialsSecret"]]["roles"] == "superuser"
    assert set(stack["elasticsearch"]["roles"]) >= {u["roles"] for u in users.values()} - {"superuser"}
    gen = next(t for t in tasks if "ansible.builtin.password" in json.dumps(t))
    assert gen["kubernetes.core.k8s"]["definition"]["type"] == "kubernetes.io/basic-auth"
    assert "namespace.yaml" in tasks[names.index(next(n for n in names if "namespace" in n))]["kubernetes.core.k8s"]["src"]
