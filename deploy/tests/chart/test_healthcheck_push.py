"""The healthcheck's push token and the targets file's maintenance window and push targets
(README "Maintenance windows", "Pushed results"), on the rendered chart."""

import yaml

from conftest import name, one, pod_spec, render

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


def test_push_targets_with_replicas_advertise_the_leader_and_reach_one_another():
    """With push targets the replicas stay two: each advertises its pod IP for the Lease, and
    the lease pods (only them) may reach one another on the status port, so that a follower
    forwards a push to the leader (README "Pushed results")."""
    docs = render("default", *[s for s in PUSH if not s.startswith("healthcheck.serve.replicas")])
    assert one(docs, "Deployment", name("healthcheck"))["spec"]["replicas"] == 2
    _, c = serve_container(docs)
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["FERROSTACK_ADVERTISE_URL"]["value"] == "http://$(POD_IP):8082"
    # $(POD_IP) expands only from a variable defined before it.
    names = [e["name"] for e in c["env"]]
    assert names.index("POD_IP") < names.index("FERROSTACK_ADVERTISE_URL")
    policy = one(docs, "NetworkPolicy", name("healthcheck") + "-lease")["spec"]
    peer = {"podSelector": {"matchLabels": {**policy["podSelector"]["matchLabels"]}}}
    assert policy["ingress"] == [{"from": [peer], "ports": [{"protocol": "TCP", "port": 8082}]}]
    assert {"to": [peer], "ports": [{"protocol": "TCP", "port": 8082}]} in policy["egress"]


def test_without_push_targets_nothing_is_advertised_nor_opened():
    docs = render("default")
    _, c = serve_container(docs)
    assert not {"POD_IP", "FERROSTACK_ADVERTISE_URL"} & {e["name"] for e in c["env"]}
    policy = one(docs, "NetworkPolicy", name("healthcheck") + "-lease")["spec"]
    assert "ingress" not in policy
    assert all(rule.get("to", [{}])[0].get("podSelector") is None or
               "ferrostack.io/leader-election" not in rule["to"][0]["podSelector"]["matchLabels"]
               for rule in policy["egress"])
