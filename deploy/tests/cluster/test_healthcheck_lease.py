"""`healthcheck serve` replicas elect one leader through a Lease on the real API server: three
local processes with the chart's own least-privilege account (get and update of the one Lease the
chart creates), a target the test switches between failing and healthy, and a real Alertmanager
(Debian's prometheus-alertmanager) whose webhook receiver records every notification. The leader
is killed (-9) mid-incident; a follower takes over within the lease duration, and exactly one
firing and one resolved notification arrive, at Alertmanager's receiver and at the generic
webhook alike. Run twice: with one shared history file (the new leader resumes from the file)
and with a history per process (the chart's emptyDir: it resumes from the Lease's incident
note)."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import CHART, ROOT, helm_template
from testsupport import free_port, tool, wait_for
from testsupport import http_get as get

BINARY = ROOT / "target" / "debug" / "ferrostack"
LEASE = "fs-healthcheck"
ACCOUNT = "fs-healthcheck-serve"
LEASE_SECONDS = 5
IDENTITIES = ("r0", "r1", "r2")


class Recorder:
    """A loopback HTTP server: GET answers with `status`; POST bodies are kept in order."""

    def __init__(self):
        self.status = 200
        self.posts = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(recorder.status)
                self.end_headers()

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def statuses(self):
        return [p["status"] for p in self.posts]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_alertmanager(tmp_path, receiver):
    config = tmp_path / "alertmanager.yml"
    # One group per target; no repeat during the test: a second notification is a duplicate.
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "hook", "group_by": ["alertname", "target"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [
            {"url": f"{receiver.url}/am", "send_resolved": True}]}]}))
    port = free_port()
    proc = subprocess.Popen([tool("prometheus-alertmanager"), f"--config.file={config}",
                             f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"alertmanager on {url}", lambda: get(f"{url}/-/ready") is not None, 30)
    return proc, url


def lease_kubeconfig(cluster, namespace, tmp_path):
    """The chart's Lease, the status page's account and its Role, applied; a kubeconfig for
    that account (so the test runs with exactly the chart's permissions)."""
    docs = [d for d in helm_template("fs", CHART, namespace)
            if d["kind"] in {"Lease", "ServiceAccount", "Role", "RoleBinding"}
            and d["metadata"]["name"].startswith(LEASE)]
    cluster.apply(docs)
    token = cluster.kubectl("-n", namespace, "create", "token", ACCOUNT).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": ACCOUNT, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = ACCOUNT
    path = tmp_path / "serve.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def holder(cluster, namespace):
    spec = cluster.get("lease", LEASE, "-n", namespace).get("spec", {})
    return spec.get("holderIdentity")


def leading(port):
    status = get(f"http://127.0.0.1:{port}/api/status")
    return status and json.loads(status)["leader"]["leading"]


@pytest.mark.parametrize("shared_history", [True, False], ids=["shared-history", "own-history"])
def test_replicas_alert_once_across_a_failover(cluster, namespace, tmp_path, shared_history):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: cargo build -p ferrostack (make test-cluster does)")
    kubeconfig = lease_kubeconfig(cluster, namespace, tmp_path)
    target, receiver = Recorder(), Recorder()
    am, am_url = start_alertmanager(tmp_path, receiver)
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": [
        {"name": "api", "url": f"{target.url}/", "interval": "1s", "timeout": "1s", "retries": 0}]}))
    procs, ports = {}, {}
    try:
        for ident in IDENTITIES:
            ports[ident] = free_port()
            history = tmp_path / ("history.jsonl" if shared_history else f"history-{ident}.jsonl")
            env = dict(os.environ, FERROSTACK_DRAIN_DELAY="0s", FERROSTACK_LOG_LEVEL="info")
            log = open(tmp_path / f"{ident}.log", "w")  # noqa: SIM115 - closed with the process
            procs[ident] = subprocess.Popen(
                [str(BINARY), "healthcheck", "serve", "--port", str(ports[ident]),
                 "--config", str(targets), "--history", str(history),
                 "--failure-threshold", "2", "--success-threshold", "2",
                 "--alertmanager-url", am_url, "--alert-webhook-url", f"{receiver.url}/webhook",
                 "--kubeconfig", str(kubeconfig), "--lease-namespace", namespace,
                 "--lease-name", LEASE, "--lease-duration", f"{LEASE_SECONDS}s",
                 "--lease-identity", ident], stdout=log, stderr=subprocess.STDOUT, env=env)
        for ident, port in ports.items():
            wait_for(f"{ident} ready", lambda p=port: get(f"http://127.0.0.1:{p}/readyz") is not None, 30)
        wait_for("a leader", lambda: holder(cluster, namespace) in IDENTITIES, 30)
        first = holder(cluster, namespace)
        wait_for(f"{first} to say it leads", lambda: leading(ports[first]), 10)
        # Exactly one replica leads, by its status and its metric.
        assert [i for i in IDENTITIES if leading(ports[i])] == [first]
        metrics = {i: get(f"http://127.0.0.1:{ports[i]}/metrics") for i in IDENTITIES}
        for ident, text in metrics.items():
            value = "1" if ident == first else "0"
            assert f"ferrostack_healthcheck_leader {value}" in text, ident

        target.status = 500
        wait_for("the firing notification", lambda: "firing" in receiver.statuses(), 30)
        procs[first].send_signal(signal.SIGKILL)
        procs[first].wait()
        killed = time.monotonic()
        wait_for("a new leader", lambda: holder(cluster, namespace) not in (first, None),
                 3 * LEASE_SECONDS)
        second = holder(cluster, namespace)
        took = time.monotonic() - killed
        assert second in IDENTITIES
        # Within the lease duration, plus one retry period and the polling's slack.
        assert took <= LEASE_SECONDS + 2, took
        wait_for(f"{second} to say it leads", lambda: leading(ports[second]), 10)
        # The incident goes on under the new leader for a few probes: nothing is sent again.
        time.sleep(4)
        target.status = 200
        wait_for("the resolved notification", lambda: "resolved" in receiver.statuses(), 30)
        time.sleep(3)  # room for a duplicate to arrive (group_interval is 1s)
        am_notes = [p["status"] for p in receiver.posts if "alerts" in p]
        hook_notes = [p["status"] for p in receiver.posts if "alerts" not in p]
        assert am_notes == ["firing", "resolved"], receiver.posts
        assert hook_notes == ["firing", "resolved"], receiver.posts
        note = cluster.get("lease", LEASE, "-n", namespace)["metadata"]["annotations"][
            "ferrostack.io/healthcheck-incidents"]
        assert json.loads(note)["api"]["firing_since"] is None, note
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for ident, proc in procs.items():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        am.terminate()
        am.wait()
        target.close()
        receiver.close()
        for ident in IDENTITIES:
            log = tmp_path / f"{ident}.log"
            if log.exists():
                print(f"--- {ident}\n{log.read_text()[-3000:]}")


def push(port, body, token, target="nightly", forwarded=False):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if forwarded:
        headers["X-Ferrostack-Forwarded"] = "1"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/push/{target}",
                                     data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_push_to_a_follower_is_forwarded_to_the_leader(cluster, namespace, tmp_path):
    """A pusher behind the Service reaches any replica: a follower forwards to the leader the
    Lease names (its --advertise-url), checks the token first, and never forwards twice."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: cargo build -p ferrostack (make test-cluster does)")
    kubeconfig = lease_kubeconfig(cluster, namespace, tmp_path)
    token = "s3cret-push-token"
    (tmp_path / "token").write_text(token)
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": [], "external-endpoints": [
        {"name": "nightly", "token-file": str(tmp_path / "token")}]}))
    procs, ports = {}, {}
    try:
        for ident in IDENTITIES[:2]:
            ports[ident] = free_port()
            log = open(tmp_path / f"{ident}.log", "w")  # noqa: SIM115 - closed with the process
            procs[ident] = subprocess.Popen(
                [str(BINARY), "healthcheck", "serve", "--port", str(ports[ident]),
                 "--config", str(targets), "--history", str(tmp_path / f"history-{ident}.jsonl"),
                 "--kubeconfig", str(kubeconfig), "--lease-namespace", namespace,
                 "--lease-name", LEASE, "--lease-duration", f"{LEASE_SECONDS}s",
                 "--lease-identity", ident, "--advertise-url", f"http://127.0.0.1:{ports[ident]}"],
                stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, FERROSTACK_DRAIN_DELAY="0s", FERROSTACK_LOG_LEVEL="info"))
        wait_for("a leader", lambda: holder(cluster, namespace) in IDENTITIES[:2], 30)
        leader = holder(cluster, namespace)
        follower = next(i for i in IDENTITIES[:2] if i != leader)
        wait_for(f"{leader} to say it leads", lambda: leading(ports[leader]), 10)
        annotations = cluster.get("lease", LEASE, "-n", namespace)["metadata"]["annotations"]
        assert annotations["ferrostack.io/healthcheck-leader-url"] == f"http://127.0.0.1:{ports[leader]}/"
        # The follower reads the Lease every retry period: it knows the leader soon after.
        status, answer = wait_for("the follower to forward", lambda: (
            r := push(ports[follower], {"success": False, "error": "disk full"}, token))[0] == 200 and r,
            3 * LEASE_SECONDS)
        assert answer["target"] == "nightly" and answer["success"] is False, answer
        # The leader recorded it (the follower's own history stays empty: it writes nothing).
        wait_for("the result on the leader's board", lambda: any(
            t["name"] == "nightly" and t["last"] and t["last"]["error"] == "disk full"
            for t in json.loads(get(f"http://127.0.0.1:{ports[leader]}/api/status"))["targets"]), 10)
        assert not (tmp_path / f"history-{follower}.jsonl").exists() or \
            (tmp_path / f"history-{follower}.jsonl").read_text() == ""
        # A wrong token is refused by the follower itself, not relayed.
        assert push(ports[follower], {"success": True}, "wrong")[0] == 401
        # One hop only: an already forwarded push reaching a follower is refused.
        status, answer = push(ports[follower], {"success": True}, token, forwarded=True)
        assert (status, answer["error"]["code"]) == (503, "not_leader"), answer
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ident in IDENTITIES[:2]:
            log = tmp_path / f"{ident}.log"
            if log.exists():
                print(f"--- {ident}\n{log.read_text()[-3000:]}")
