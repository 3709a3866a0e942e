"""Jenkins: Helm values, the pod agent (strict Kubernetes schema), and the Jenkinsfile: every
container it uses exists in the pod, images are pinned, the builder is daemonless, the deploy
step calls a real playbook and inventory group, and every shell step passes shellcheck."""
import json
import re
import subprocess

import pytest
import yaml

from conftest import ROOT
from k8s import validate

JENKINS = ROOT / "deploy" / "jenkins"
ANSIBLE = ROOT / "deploy" / "ansible"


@pytest.fixture(scope="module")
def jenkinsfile():
    return (JENKINS / "Jenkinsfile").read_text()


@pytest.fixture(scope="module")
def pod():
    return yaml.safe_load((JENKINS / "agent-pod.yaml").read_text())


def sh_blocks(text: str) -> list[str]:
    blocks = re.findall(r"sh '''(.*?)'''", text, re.S) + re.findall(r"sh '([^'\n]*)'", text)
    return [b.replace("\\\\", "\\") for b in blocks]


def test_values():
    values = yaml.safe_load((JENKINS / "values.yaml").read_text())
    assert values["controller"]["nodeSelector"], "the controller is pinned to the CI node"
    assert values["persistence"]["enabled"] is True and values["persistence"]["size"]
    # the chart mounts the admin credentials only with createSecret: true, and then mounts
    # existingSecret instead of generating one (test_upstream_charts.py renders it)
    assert values["controller"]["admin"]["createSecret"] is True and values["controller"]["admin"]["existingSecret"]
    assert "password" not in yaml.safe_dump(values["controller"]["admin"]).replace("Secret", "")


def test_pod_agent_is_valid_and_safe(pod):
    assert validate([pod]) == []
    text = yaml.safe_dump(pod)
    assert "docker.sock" not in text and "privileged: true" not in text
    assert "kaniko-project" not in text, "kaniko's upstream is archived"
    for c in pod["spec"]["containers"]:
        image = c["image"]
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image
        assert c["resources"]["limits"]["memory"], c["name"]
        assert c.get("securityContext", {}).get("privileged") is not True
    names = {c["name"] for c in pod["spec"]["containers"]}
    assert {"rust", "buildah", "deployer"} <= names
    deployer = next(c for c in pod["spec"]["containers"] if c["name"] == "deployer")
    env = {e["name"]: e["value"] for e in deployer["env"]}
    mount = next(m for m in deployer["volumeMounts"] if m["name"] == "kubeconfig")
    assert mount["readOnly"] is True and env["KUBECONFIG"].startswith(mount["mountPath"] + "/")
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "kubeconfig")
    assert vol["secret"]["secretName"] == "jenkins-deployer-kubeconfig"
    assert "quay.io/buildah/" in next(c for c in pod["spec"]["containers"] if c["name"] == "buildah")["image"]


def test_jenkinsfile_uses_what_exists(jenkinsfile, pod):
    assert jenkinsfile.count("{") == jenkinsfile.count("}"), "unbalanced braces"
    names = {c["name"] for c in pod["spec"]["containers"]}
    used = set(re.findall(r"container\('([\w-]+)'\)", jenkinsfile)) | set(re.findall(r"defaultContainer '([\w-]+)'", jenkinsfile))
    assert used and used <= names, used - names
    for path in re.findall(r"yamlFile '([^']+)'", jenkinsfile):
        assert (ROOT / path).is_file(), path
    stages = re.findall(r"stage\('([^']+)'\)", jenkinsfile)
    for required in ("Test", "Build image", "Push image", "Deploy staging", "Approve production", "Deploy production"):
        assert required in stages, required
    assert re.search(r"^\s*agent none", jenkinsfile, re.M), "no pod is held while waiting for approval"
    inventory = yaml.safe_load((ANSIBLE / "inventory" / "hosts.yml").read_text())["all"]["children"]
    all_vars = yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / "all.yml").read_text())
    deploys = re.findall(r"ansible-playbook (\S+) -l (\w+)((?:\s*\\?\s*-e \w+=\S+)*)", "\n".join(sh_blocks(jenkinsfile)))
    assert {d[1] for d in deploys} == {"staging", "production"}
    for playbook, group, extra in deploys:
        assert (ANSIBLE / playbook).is_file() and group in inventory
        for var in re.findall(r"-e (\w+)=", extra):
            assert var in all_vars, var
    assert "bash .ci/run" in jenkinsfile, "CI runs the same entry point as everywhere else"


def test_jenkinsfile_shell_steps_pass_shellcheck(jenkinsfile, tmp_path):
    blocks = sh_blocks(jenkinsfile)
    assert len(blocks) >= 5
    for i, body in enumerate(blocks):
        script = tmp_path / f"step{i}.sh"
        script.write_text("#!/bin/sh\n" + body + "\n")
        res = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, body + res.stdout


def test_deployer_image_installs_the_pinned_tools():
    text = (JENKINS / "deployer" / "Containerfile").read_text()
    assert "scripts/requirements-platform.txt" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert (ROOT / "scripts" / "requirements-platform.txt").is_file()


def test_buildah_can_run_build_steps(pod):
    """buildah's chroot isolation (buildah-build(1) --isolation chroot; its rootless tutorial
    docs/tutorials/05-openshift-rootless-build.md uses BUILDAH_ISOLATION=chroot in a pod) calls
    chroot(2), which needs CAP_SYS_CHROOT, and unshares and mounts a mount namespace per RUN step,
    which needs CAP_SYS_ADMIN in the user namespace that owns it. Both are granted, and only
    inside the pod's own user namespace (hostUsers: false), so they are not the node's."""
    buildah = next(c for c in pod["spec"]["containers"] if c["name"] == "buildah")
    env = {e["name"]: e["value"] for e in buildah["env"]}
    assert env["BUILDAH_ISOLATION"] == "chroot"
    caps = buildah["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"] and {"SYS_CHROOT", "SYS_ADMIN", "SETUID", "SETGID"} <= set(caps["add"])
    assert pod["spec"]["hostUsers"] is False, "SYS_ADMIN only over the pod's user namespace"
    # the containerd default AppArmor profile has `deny mount,`: the step's mounts need it off
    assert buildah["securityContext"]["appArmorProfile"] == {"type": "Unconfined"}
    others = [c for c in pod["spec"]["containers"] if c["name"] != "buildah"]
    assert not [c["name"] for c in others if "SYS_ADMIN" in json.dumps(c)]

