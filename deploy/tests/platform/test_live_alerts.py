"""Live observability test (issue 7 item 4): `ferrostack up` (the real binary), a real Prometheus
(Debian `prometheus`) loaded with deploy/observability/rules and a real Alertmanager
(Debian `prometheus-alertmanager`) routed by deploy/observability/alertmanager, all on
loopback ports chosen free. up's data-api is made to fail through fault injection and a
standalone backend-api replica is stopped; the matching alerts must fire in Prometheus, reach
Alertmanager and be routed to the right receivers, then resolve once the faults are removed:
FerrostackServiceDown, FerrostackHighErrorRatio and (case study 004, "increase of the errors in
logs") FerrostackErrorLogRateIncrease, which the runtime feeds by logging every 5xx at level
error (ferrostack_log_events_total{level="error"}).

Clock: scrape and evaluation every second; the rules run unchanged except that every range,
offset and `for` is divided by TIME_FACTOR (5m -> 10s), so the test takes about a minute."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conftest import OBS, ROOT
from live import (AlertTimeline, Processes, Sink, alertmanager_test_config, free_ports, get_json, http,
                  scale_rules, wait_for, write_yaml)

TIME_FACTOR = 30
HTTP_ROLES = ("backend-api", "data-api")
ERROR_LOG_ALERT = "FerrostackErrorLogRateIncrease"


def ferrostack_binary() -> Path:
    """FERROSTACK_BIN, else `cargo build -p ferrostack` (debug, shares make test's target dir)."""
    if os.environ.get("FERROSTACK_BIN"):
        return Path(os.environ["FERROSTACK_BIN"])
    subprocess.run(["cargo", "build", "--locked", "-p", "ferrostack"], cwd=ROOT, check=True, timeout=1800)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                                     check=True, capture_output=True, text=True).stdout)
    return Path(meta["target_directory"]) / "debug" / "ferrostack"


def exposition_samples(text: str) -> dict[str, set[str]]:
    """Sample name -> label names seen, from Prometheus or OpenMetrics text (OpenMetrics names
    a counter family without `_total`, so samples, not `# TYPE` lines, are compared)."""
    samples: dict[str, set[str]] = {}
    for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ", text, re.M):
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or ""))
        samples.setdefault(m.group(1), set()).update(labels - {"le", "quantile"})
    return samples


def sample_name(name: str, meta: dict) -> str:
    return name + "_bucket" if meta["type"] == "histogram" else name


# Roles `up` may serve besides the two services, by port offset (webhook: its plain metrics port).
OPTIONAL_UP_ROLES = {"healthcheck": 2, "logship": 4, "webhook": 5}


class Stack:
    """`ferrostack up` (every role in one process) plus one standalone backend-api replica:
    `up` cannot stop a single role, so the role that goes away is a second backend-api
    process, as a pod of a Deployment would; up's own backend-api keeps serving."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs = Processes(tmp)
        self.sink = Sink()
        self.bin = ferrostack_binary()
        self.base = free_ports(7, consecutive=True)[0]
        replica, prom, am = free_ports(3)
        self.ports = {"replica": replica, "prometheus": prom, "alertmanager": am}
        self.prom = f"http://127.0.0.1:{prom}"
        self.am = f"http://127.0.0.1:{am}"
        self.stop_traffic = threading.Event()
        self.targets: dict[str, list[str]] = {}
        self.timeline: AlertTimeline | None = None

    def up_url(self, offset: int) -> str:
        return f"http://127.0.0.1:{self.base + offset}"

    def start_up(self):
        self.procs.start("up", [str(self.bin), "up", "--base-port", str(self.base), "--data-dir", str(self.tmp / "up"),
                                "--fault-injection", "--work-delay", "10ms", "--drain-delay", "0s",
                                "--shutdown-timeout", "5s"], env={**os.environ, "FERROSTACK_LOG_LEVEL": "info"})
        for offset in (0, 1):
            wait_for(f"up: {self.up_url(offset)}/readyz",
                     lambda o=offset: http("GET", self.up_url(o) + "/readyz")[0] == 200, 60,
                     diagnose=lambda: self.procs.log("up"))
        self.targets = {"backend-api": [f"127.0.0.1:{self.base}", f"127.0.0.1:{self.ports['replica']}"],
                        "data-api": [f"127.0.0.1:{self.base + 1}"]}
        for role, offset in OPTIONAL_UP_ROLES.items():
            if http("GET", self.up_url(offset) + "/metrics")[0] == 200:
                self.targets[role] = [f"127.0.0.1:{self.base + offset}"]

    def start_replica(self):
        port = self.ports["replica"]
        self.procs.start("replica", [
            str(self.bin), "backend-api", "--host", "127.0.0.1", "--port", str(port), "--drain-delay", "0s",
            "--shutdown-timeout", "5s", "--work-delay", "10ms", "--log-dir", str(self.tmp / "replica-logs")])
        wait_for("backend-api replica /readyz", lambda: http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200, 60,
                 diagnose=lambda: self.procs.log("replica"))

    def start_monitoring(self):
        rules = []
        for path in sorted((OBS / "rules").glob("*.yaml")):
            rules.append(str(write_yaml(self.tmp / f"fast-{path.name}",
                                        scale_rules(yaml.safe_load(path.read_text()), TIME_FACTOR))))
        prom_cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": rules,
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}]},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                               for job, targets in self.targets.items()],
        }
        write_yaml(self.tmp / "prometheus.yml", prom_cfg)
        real_am = yaml.safe_load((OBS / "alertmanager" / "alertmanager.yaml").read_text())
        write_yaml(self.tmp / "alertmanager.yml", alertmanager_test_config(real_am, self.sink.url))
        am_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        self.procs.start("alertmanager", [
            am_bin, f"--config.file={self.tmp / 'alertmanager.yml'}", f"--storage.path={self.tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}", "--cluster.listen-address=",
            "--log.level=warn"])
        self.procs.start("prometheus", [
            shutil.which("prometheus"), f"--config.file={self.tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.tmp / 'prom-data'}", f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            "--log.level=warn"])
        wait_for("Alertmanager ready", lambda: http("GET", self.am + "/-/ready")[0] == 200, 60,
                 diagnose=lambda: self.procs.log("alertmanager"))
        wait_for("Prometheus ready", lambda: http("GET", self.prom + "/-/ready")[0] == 200, 60,
                 diagnose=lambda: self.procs.log("prometheus"))

    def traffic(self):
        """Steady, bounded load on the fast route of the services (about 20 req/s each)."""
        urls = [self.up_url(0), self.up_url(1), f"http://127.0.0.1:{self.ports['replica']}"]
        i = 0
        deadline = time.monotonic() + 600
        while not self.stop_traffic.is_set() and time.monotonic() < deadline:
            for url in urls:
                http("GET", f"{url}/api?probe={i}", timeout=2)
            i += 1
            time.sleep(0.05)

    # --- Prometheus / Alertmanager views --------------------------------------------------
    def prom_alerts(self, state: str | None = None) -> list[dict]:
        alerts = get_json(self.prom + "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"].startswith("Ferrostack")
                and (state is None or a["state"] == state)]

    def firing(self, alertname: str, **labels) -> bool:
        return any(a["labels"]["alertname"] == alertname and all(a["labels"].get(k) == v for k, v in labels.items())
                   for a in self.prom_alerts("firing"))

    def am_alerts(self) -> list[dict]:
        return get_json(self.am + "/api/v2/alerts?active=true&silenced=false&inhibited=true")

    def am_alert(self, alertname: str, **labels) -> dict | None:
        for a in self.am_alerts():
            if a["labels"].get("alertname") == alertname and all(a["labels"].get(k) == v for k, v in labels.items()):
                return a
        return None

    def diagnose(self) -> str:
        parts = []
        for name, url in (("prometheus alerts", self.prom + "/api/v1/alerts"),
                          ("targets", self.prom + "/api/v1/targets?state=active"),
                          ("alertmanager alerts", self.am + "/api/v2/alerts")):
            status, body = http("GET", url)
            parts.append(f"--- {name} ({status}): {body[:3000].decode(errors='replace')}")
        parts.append(f"--- sink: {self.sink.notifications[-5:]}")
        return "\n".join(parts)

    def close(self):
        if self.timeline:
            self.timeline.stop()
        self.stop_traffic.set()
        self.procs.stop_all()
        self.sink.close()


@pytest.fixture()
def stack(tmp_path):
    for tool in ("prometheus", "promtool"):
        assert shutil.which(tool), f"{tool} missing: make test-platform installs it"
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_alerts_fire_route_and_resolve(stack):
    stack.start_up()
    stack.start_replica()
    stack.start_monitoring()
    load = threading.Thread(target=stack.traffic, daemon=True)
    load.start()

    # --- the metric names the rules and dashboards rely on are really exported --------------
    listed = yaml.safe_load((OBS / "metrics.yaml").read_text())["ferrostack"]
    for role, targets in stack.targets.items():
        for target in targets:
            if role in HTTP_ROLES:
                assert http("GET", f"http://{target}/", timeout=10)[0] == 200, "GET / writes a log file"
            status, body = http("GET", f"http://{target}/metrics")
            assert status == 200, (role, target)
            samples = exposition_samples(body.decode())
            roles = {role, "http"}
            expected = {n: m for n, m in listed.items()
                        if roles & set(m["roles"]) and (not m.get("lazy") or m.get("after") == "GET /")}
            missing = sorted(n for n, m in expected.items() if sample_name(n, m) not in samples)
            assert not missing, f"{role} at {target}: /metrics lacks {missing}"
            for name, meta in expected.items():
                seen = samples[sample_name(name, meta)]
                if meta.get("labels") and seen:
                    assert set(meta["labels"]) <= seen, (role, name, seen)

    # --- healthy: every target up, rules evaluated, nothing of ours fires -------------------
    n_targets = sum(len(t) for t in stack.targets.values())

    def targets_up():
        targets = get_json(stack.prom + "/api/v1/targets?state=active")["data"]["activeTargets"]
        return len(targets) == n_targets and all(t["health"] == "up" for t in targets)
    wait_for("all scrape targets up", targets_up, 60, diagnose=stack.diagnose)
    groups = get_json(stack.prom + "/api/v1/rules")["data"]["groups"]
    assert {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"} >= {
        "FerrostackServiceDown", "FerrostackHighErrorRatio"}
    time.sleep(15)  # longer than every scaled `for` the healthy path could trip
    assert stack.prom_alerts("firing") == [], stack.diagnose()
    assert stack.am_alerts() == [], stack.diagnose()

    # --- faults: up's data-api answers 500 (fault injection), a backend-api replica stops -----
    # The timeline records every alert state from here on: the error-log rate alert compares the
    # last 5m with the hour before, so it resolves by itself once the errors become the baseline.
    timeline = AlertTimeline(stack.prom, stack.am).start()
    stack.timeline = timeline
    data_api = stack.up_url(1)
    status, _ = http("POST", data_api + "/fault_injection/enable", b"")
    assert 200 <= status < 300, status
    status, _ = http("GET", data_api + "/api?x=1")
    assert status == 500, "fault injection did not take effect"
    replica = f"127.0.0.1:{stack.ports['replica']}"
    assert stack.procs.stop("replica") == 0, "the backend-api replica did not shut down cleanly on SIGTERM"

    wait_for("FerrostackServiceDown{job=backend-api} firing in Prometheus",
             lambda: stack.firing("FerrostackServiceDown", job="backend-api", instance=replica), 60,
             diagnose=stack.diagnose)
    wait_for("FerrostackHighErrorRatio{job=data-api} firing in Prometheus",
             lambda: stack.firing("FerrostackHighErrorRatio", job="data-api", severity="critical"), 90,
             diagnose=stack.diagnose)
    assert not stack.firing("FerrostackServiceDown", job="data-api"), "data-api is up, only failing"
    assert not stack.firing("FerrostackServiceDown", instance=f"127.0.0.1:{stack.base}"), "up's backend-api serves"
    assert not stack.firing("FerrostackHighErrorRatio", job="backend-api"), "backend-api answers 200"

    # Alertmanager got both, routes them to PagerDuty and chat, and does not inhibit data-api's
    # error ratio because another role is down (inhibition is per namespace and job).
    for name, job in (("FerrostackServiceDown", "backend-api"), ("FerrostackHighErrorRatio", "data-api")):
        alert = wait_for(f"{name} in Alertmanager", lambda n=name, j=job: stack.am_alert(n, job=j), 60,
                         diagnose=stack.diagnose)
        assert {r["name"] for r in alert["receivers"]} == {"pagerduty", "chat"}, alert["receivers"]
        assert alert["status"]["state"] == "active" and not alert["status"]["inhibitedBy"], alert["status"]
        wait_for(f"{name} firing notification to pagerduty",
                 lambda n=name: stack.sink.received("pagerduty", n, "firing"), 60, diagnose=stack.diagnose)

    # --- error-log rate (case study 004): every 500 is logged at level error ------------------
    def error_lines(job):
        res = get_json(stack.prom + "/api/v1/query?query=" + urllib.parse.quote(
            f'sum(ferrostack_log_events_total{{level="error",job="{job}"}})'))["data"]["result"]
        return float(res[0]["value"][1]) if res else 0.0
    wait_for("data-api's error log lines counted by Prometheus", lambda: error_lines("data-api") > 0, 30,
             diagnose=stack.diagnose)
    assert error_lines("data-api") > 0
    wait_for(f"{ERROR_LOG_ALERT}{{job=data-api}} firing in Prometheus",
             lambda: timeline.find("prometheus", ERROR_LOG_ALERT, "firing", job="data-api"), 90,
             diagnose=stack.diagnose)
    (_, am_seen), *_ = wait_for(f"{ERROR_LOG_ALERT}{{job=data-api}} in Alertmanager",
                                lambda: timeline.find("alertmanager", ERROR_LOG_ALERT, job="data-api"), 60,
                                diagnose=stack.diagnose)
    # a warning: chat and e-mail, no page; not inhibited by the critical alerts of other jobs
    assert am_seen["labels"]["severity"] == "warning", am_seen
    assert am_seen["receivers"] == ["chat-and-email"] and am_seen["state"] == "active", am_seen
    assert not am_seen["inhibitedBy"], am_seen
    wait_for(f"{ERROR_LOG_ALERT} firing notification to chat-and-email",
             lambda: stack.sink.received("chat-and-email", ERROR_LOG_ALERT, "firing", job="data-api"), 60,
             diagnose=stack.diagnose)
    assert not stack.sink.received("pagerduty", ERROR_LOG_ALERT, "firing"), "a warning never pages"

    # --- recovery: remove the faults, everything resolves ------------------------------------
    status, _ = http("POST", data_api + "/fault_injection/disable", b"")
    assert 200 <= status < 300, status
    stack.start_replica()

    wait_for("our alerts to stop firing in Prometheus", lambda: not stack.prom_alerts("firing"), 120,
             diagnose=stack.diagnose)
    for name in ("FerrostackServiceDown", "FerrostackHighErrorRatio"):
        wait_for(f"{name} resolved notification to pagerduty",
                 lambda n=name: stack.sink.received("pagerduty", n, "resolved"), 90, diagnose=stack.diagnose)
    wait_for(f"{ERROR_LOG_ALERT} resolved notification to chat-and-email",
             lambda: stack.sink.received("chat-and-email", ERROR_LOG_ALERT, "resolved", job="data-api"), 90,
             diagnose=stack.diagnose)
    firing = timeline.find("prometheus", ERROR_LOG_ALERT, "firing", job="data-api")
    assert firing and not stack.firing(ERROR_LOG_ALERT, job="data-api"), "fired, then resolved in Prometheus"
    wait_for("no active alerts in Alertmanager",
             lambda: not [a for a in stack.am_alerts() if a["labels"]["alertname"].startswith("Ferrostack")],
             60, diagnose=stack.diagnose)

    # --- and `up` itself stops gracefully ------------------------------------------------------
    stack.stop_traffic.set()
    load.join(10)
    assert stack.procs.stop("up", timeout=30) == 0, stack.procs.log("up")
