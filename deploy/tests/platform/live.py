"""Helpers for the live observability test: free loopback ports, supervised processes, the
test-only Prometheus and Alertmanager configurations derived from the real ones, a webhook
sink standing in for the chat/e-mail/PagerDuty receivers, and small API clients."""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    parts = _DURATION.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Prometheus duration: {text!r}"
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scale_expr(expr: str, factor: float, floor: float) -> str:
    """Divide every range `[d]` and `offset d` by factor, never below floor seconds."""
    def rng(m):
        return "[" + format_duration(max(floor, parse_duration(m.group(1)) / factor)) + "]"

    def off(m):
        return "offset " + format_duration(max(floor, parse_duration(m.group(1)) / factor))
    parts = re.split(r'("(?:[^"\\]|\\.)*")', expr)   # odd indexes: string literals, left alone
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\[((?:\d+(?:ms|s|m|h|d|w))+)\]", rng, parts[i])
        parts[i] = re.sub(r"offset ((?:\d+(?:ms|s|m|h|d|w))+)", off, parts[i])
    return "".join(parts)


def scale_rules(doc: dict, factor: float, range_floor: float = 4.0) -> dict:
    """The same rules on a faster clock: ranges, offsets and `for` durations divided by factor."""
    out = {"groups": []}
    for group in doc["groups"]:
        rules = []
        for rule in group["rules"]:
            rule = dict(rule)
            rule["expr"] = scale_expr(rule["expr"], factor, range_floor)
            if "for" in rule:
                rule["for"] = format_duration(parse_duration(rule["for"]) / factor)
            rules.append(rule)
        out["groups"].append({**{k: v for k, v in group.items() if k != "rules"}, "rules": rules})
    return out


def alertmanager_test_config(real: dict, sink_url: str) -> dict:
    """The real routing tree and inhibit rules; every receiver delivers to the local sink."""
    cfg = {
        "global": {"resolve_timeout": "1m"},
        "route": _fast_route(real["route"]),
        "inhibit_rules": real.get("inhibit_rules", []),
        "receivers": [
            {"name": r["name"], "webhook_configs": [{"url": f"{sink_url}/{r['name']}", "send_resolved": True}]}
            for r in real["receivers"]
        ],
    }
    return cfg


def _fast_route(route: dict) -> dict:
    route = dict(route)
    for key, value in (("group_wait", "1s"), ("group_interval", "2s"), ("repeat_interval", "1h")):
        if key in route:
            route[key] = value
    if "routes" in route:
        route["routes"] = [_fast_route(r) for r in route["routes"]]
    return route


def free_ports(count: int, consecutive: bool = False) -> list[int]:
    """Ports free on 127.0.0.1 right now (consecutive: a block, for `up --base-port`)."""
    if not consecutive:
        socks = []
        try:
            for _ in range(count):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                socks.append(s)
            return [s.getsockname()[1] for s in socks]
        finally:
            for s in socks:
                s.close()
    for _ in range(200):
        (base,) = free_ports(1)
        if base + count >= 65000:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return list(range(base, base + count))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


class Processes:
    """Processes started by the test, each stopped by its own handle at the end."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 15) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name, timeout=10)

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class Sink:
    """Webhook receiver on loopback: records every Alertmanager notification by receiver."""

    def __init__(self):
        self.notifications: list[tuple[str, dict]] = []
        lock = self.lock = threading.Lock()
        notes = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    notes.append((self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, receiver: str, alertname: str, status: str, **labels) -> bool:
        with self.lock:
            return any(r == receiver and any(a["labels"].get("alertname") == alertname and a["status"] == status
                                             and all(a["labels"].get(k) == v for k, v in labels.items())
                                             for a in body["alerts"])
                       for r, body in self.notifications)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class AlertTimeline:
    """Polls Prometheus' and Alertmanager's alert APIs in the background and keeps every alert
    state it sees, so that an alert which fires and resolves between two of the test's own
    waits (a rate-increase alert resolves by itself once the new rate becomes the baseline)
    is still observed, in order."""

    def __init__(self, prom_url: str, am_url: str, interval: float = 0.5):
        self.prom_url, self.am_url, self.interval = prom_url, am_url, interval
        self.entries: list[tuple[float, str, dict]] = []   # (monotonic time, source, alert)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "AlertTimeline":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)

    def _fetch(self, url: str):
        status, body = http("GET", url, timeout=2)
        return json.loads(body) if status == 200 else None

    def _run(self) -> None:
        while not self.stop_event.is_set():
            now = time.monotonic()
            seen = []
            prom = self._fetch(self.prom_url + "/api/v1/alerts")
            for a in (prom or {}).get("data", {}).get("alerts", []):
                seen.append((now, "prometheus", {"labels": a["labels"], "state": a["state"]}))
            for a in self._fetch(self.am_url + "/api/v2/alerts?active=true&silenced=false&inhibited=true") or []:
                seen.append((now, "alertmanager", {"labels": a["labels"], "state": a["status"]["state"],
                                                   "inhibitedBy": a["status"]["inhibitedBy"],
                                                   "receivers": sorted(r["name"] for r in a["receivers"])}))
            with self.lock:
                self.entries.extend(seen)
            self.stop_event.wait(self.interval)

    def find(self, source: str, alertname: str, state: str | None = None, **labels) -> list[tuple[float, dict]]:
        """Every observation of alertname (with these labels, in this state) from source, oldest first."""
        with self.lock:
            return [(t, a) for t, s, a in self.entries
                    if s == source and a["labels"].get("alertname") == alertname
                    and (state is None or a["state"] == state)
                    and all(a["labels"].get(k) == v for k, v in labels.items())]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
        return 0, b""


def get_json(url: str):
    status, body = http("GET", url)
    assert status == 200, f"GET {url} -> {status} {body[:200]!r}"
    return json.loads(body)


def wait_for(what: str, check, timeout: float, interval: float = 0.5, diagnose=None):
    """Poll check() until it returns a truthy value; fail with a diagnosis after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    extra = diagnose() if diagnose else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last={last!r}\n{extra}")


def write_yaml(path: Path, doc) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
