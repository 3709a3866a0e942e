"""The healthcheck's push token and the targets file's maintenance window and push targets
(README "Maintenance windows", "Pushed results"), on the rendered chart."""

import yaml

from conftest import helm, name, one, pod_spec, render, template_args

PUSH = ("healthcheck.push.tokenSecret=push-token", "healthcheck.serve.replicas=1",
        "healthcheck.externalEndpoints[0].name=nightly-backup",
        "healthcheck.externalEndpoints[0].heartbeat=25h",
        "healthcheck.maintenance.start=23:00", "healthcheck.maintenance.duration=1h",
        "healthcheck.maintenance.timezone=Europe/Amsterdam")


def serve_container(docs):
    spec = pod_spec(one(docs, "Deployment", name("healthcheck")))
    return spec, next(c for c in spec["containers"] if c["name"] == "healthcheck")


def test_no_push_token_by_default():
    spec, c = serve_container(render("default"))
    assert "FERROSTACK_PUSH_TOKEN_FILE" not in {e["name"] for e in c["env"]}
    assert not [v for v in spec["volumes"] if v["name"] == "push-token"]
    targets = yaml.safe_load(one(render("default"), "ConfigMap",
                                 name("healthcheck") + "-targets")["data"]["targets.yaml"])
    assert "external-endpoints" not in targets and "maintenance" not in targets


def test_the_push_token_is_a_file_from_the_secret_and_the_targets_file_has_the_new_keys():
    docs = render("default", *PUSH)
    spec, c = serve_container(docs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FERROSTACK_PUSH_TOKEN_FILE"] == "/etc/ferrostack/push-token/token"
    mount = next(m for m in c["volumeMounts"] if m["name"] == "push-token")
    assert mount == {"name": "push-token", "mountPath": "/etc/ferrostack/push-token",
                     "readOnly": True}
    vol = next(v for v in spec["volumes"] if v["name"] == "push-token")
    assert vol["secret"]["secretName"] == "push-token"
    assert vol["secret"]["items"] == [{"key": "token", "path": "token"}]
    # Only serve takes pushes: the CronJob gets no token.
    cron = pod_spec(one(docs, "CronJob", name("healthcheck")))["containers"][0]
    assert "FERROSTACK_PUSH_TOKEN_FILE" not in {e["name"] for e in cron["env"]}
    targets = yaml.safe_load(one(docs, "ConfigMap", name("healthcheck") + "-targets")
                             ["data"]["targets.yaml"])
    assert targets["external-endpoints"] == [{"name": "nightly-backup", "heartbeat": "25h"}]
    assert targets["maintenance"] == {"start": "23:00", "duration": "1h",
                                      "timezone": "Europe/Amsterdam"}


def test_push_targets_need_one_serve_replica():
    sets = [s for s in PUSH if not s.startswith("healthcheck.serve.replicas")]
    args = template_args("default")
    for s in sets:
        args += ["--set", s]
    out = helm(*args, check=False)
    assert out.returncode != 0
    assert "healthcheck.externalEndpoints needs healthcheck.serve.replicas: 1" in out.stderr
