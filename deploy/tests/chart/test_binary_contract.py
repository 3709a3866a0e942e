"""The chart against the real binary (the debug build `make test-chart` makes):
every role the chart runs is a subcommand, every FERROSTACK_* variable and flag it sets is one
the role documents, and backend-api / data-api start with exactly the chart's environment,
serve their probes and exit 0 on SIGTERM within the pod's grace period. A role whose `--help`
fails is a failure, never a skip."""

import functools
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import containers, ferrostack_binary, free_port, get, name, one, pod_spec, render

PROFILES = ("default", "full", "kind")


def binary():
    return ferrostack_binary()


@functools.lru_cache(maxsize=None)
def help_text(role):
    out = subprocess.run([binary(), *role, "--help"], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, f"`ferrostack {' '.join(role)} --help` exited {out.returncode}: {out.stderr}"
    return out.stdout


def chart_containers():
    """(role words, flags, env names) of every ferrostack container in every profile."""
    seen = {}
    for profile in PROFILES:
        for d in render(profile):
            spec = pod_spec(d)
            if spec is None:
                continue
            for c in containers(spec):
                if not c["image"].startswith("ghcr.io/ferrostack/"):
                    continue
                role = tuple(a for a in c["args"] if not a.startswith("-"))
                flags = {a.split("=")[0] for a in c["args"] if a.startswith("--")}
                envs = {e["name"] for e in c.get("env", []) if e["name"].startswith("FERROSTACK_")}
                entry = seen.setdefault(role, (set(), set()))
                entry[0].update(flags)
                entry[1].update(envs)
    return seen


CONTAINERS = chart_containers()


def test_chart_runs_the_known_roles():
    assert set(CONTAINERS) == {("backend-api",), ("data-api",), ("logship",),
                               ("healthcheck", "run"), ("healthcheck", "serve"),
                               ("webhook", "serve"), ("webhook", "audit")}


@pytest.mark.parametrize("role", sorted(CONTAINERS), ids=" ".join)
def test_flags_and_env_are_documented_by_the_role(role):
    text = help_text(role)
    flags, envs = CONTAINERS[role]
    undocumented = [e for e in sorted(envs) if f"[env: {e}=" not in " ".join(text.split())]
    assert not undocumented, f"{' '.join(role)} does not read {undocumented}"
    for f in flags:
        assert f in text, f


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_role_starts_with_the_chart_environment(role, tmp_path):
    help_text((role,))
    dep = one(render("full"), "Deployment", name(role))
    spec = pod_spec(dep)
    c = next(x for x in spec["containers"] if x["name"] == role)
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    port = free_port()
    # Only what a pod gets from Kubernetes differs: the address, and the mounted directories.
    env.update(FERROSTACK_HOST="127.0.0.1", FERROSTACK_PORT=str(port),
               FERROSTACK_LOG_DIR=str(tmp_path / "logs"))
    if "FERROSTACK_INTEGRATION_KEYS_DIR" in env:
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "staging").write_text("k")
        env["FERROSTACK_INTEGRATION_KEYS_DIR"] = str(tmp_path / "keys")
    env["PATH"] = os.environ.get("PATH", "")
    proc = subprocess.Popen([binary(), *c["args"]], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while get(base + "/readyz")[0] != 200:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.2)
        assert get(base + c["livenessProbe"]["httpGet"]["path"])[0] == 200
        assert get(base + c["startupProbe"]["httpGet"]["path"])[0] == 200
        status, body = get(base + "/api?x=1")
        assert status == 200 and json.loads(body) == {"params": {"x": "1"}}
        proc.send_signal(signal.SIGTERM)
        # The kubelet kills the container this long after SIGTERM (after the preStop sleep).
        grace = spec["terminationGracePeriodSeconds"] - c["lifecycle"]["preStop"]["sleep"]["seconds"]
        out, _ = proc.communicate(timeout=grace)
        assert proc.returncode == 0
        lines = [json.loads(l) for l in out.decode().splitlines() if l.startswith("{")]
        assert lines and all(l.get("role") == role for l in lines if "role" in l)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_logship_sidecar_reads_the_mounted_credentials_file(tmp_path):
    """The sidecar of the full profile, with exactly the chart's environment: the mounted
    Secret's path is what the shipper reads (a missing file is exit 2 naming the flag and
    the file), and with the file in place it starts, serves its probes and stops cleanly."""
    help_text(("logship",))
    spec = pod_spec(one(render("full"), "Deployment", name("data-api")))
    side = next(c for c in spec["initContainers"] if c["name"] == "logship")
    env = {e["name"]: e["value"] for e in side["env"] if "value" in e}
    mounted = env["FERROSTACK_S3_CREDENTIALS_FILE"]
    env["PATH"] = os.environ.get("PATH", "")
    env.update(FERROSTACK_HOST="127.0.0.1", FERROSTACK_STATE_DIR=str(tmp_path / "state"))
    source = [a for a in side["args"] if a.startswith("--source=")]
    args = [binary(), "logship", f"--source={tmp_path / 'logs'}"]
    assert source, side["args"]
    (tmp_path / "logs").mkdir()

    if not os.path.exists(mounted):
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, out.stderr
        assert "--s3-credentials-file" in out.stderr and mounted in out.stderr, out.stderr

    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\n"
                     "aws_secret_access_key = do-not-print-me\n")
    port = free_port()
    env.update(FERROSTACK_S3_CREDENTIALS_FILE=str(creds), FERROSTACK_PORT=str(port))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"do-not-print-me" not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
