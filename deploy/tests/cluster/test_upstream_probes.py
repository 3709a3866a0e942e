"""`healthcheck` judged by the upstream probers it claims to follow, each built from its official
Go module (scripts/cluster.sh build; versions in deploy/versions.yaml):

- blackbox_exporter probes the same HTTP, TCP, gRPC and DNS peers as `healthcheck serve`; every
  `probe_*` family serve exposes for a target must be one blackbox_exporter exposes for that
  prober, with the same type and labels (besides `target`) and, where both measured the same
  thing, the same value.
- grpc-health-probe and `healthcheck run` ask the same gRPC health server (Google's own
  implementation, grpcio-health-checking) about serving, not serving, unknown and unreachable
  services; both must reach the same verdict.

The peers are real servers no one here wrote: Python's http.server, grpcio's health servicer and
Debian's dnsmasq, all on loopback."""
import os
import re
import signal
import socket
import subprocess
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import K8S_BIN, ROOT, require_components
from testsupport import free_port, http_get, wait_for

BINARY = ROOT / "target" / "debug" / "ferrostack"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Prometheus text exposition: {family: (type, [(labels dict, value)])}."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, f"not an exposition line: {line!r}"
            samples.setdefault(m.group(1), []).append(
                (dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return {name: (types.get(name), s) for name, s in samples.items()}


@pytest.fixture(scope="module")
def tools():
    require_components()
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: build it first (make test-cluster does)")


@pytest.fixture(scope="module")
def web():
    """`/ok` answers 200 with a small body, `/down` 503."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = b"ok\n" if self.path == "/ok" else b"down\n"
            self.send_response(200 if self.path == "/ok" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def grpc_port():
    """grpcio's health servicer: the server overall and `up` serving, `down` not serving."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("up", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("down", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


@pytest.fixture(scope="module")
def dns_port():
    """dnsmasq answering `ok.test` with an A record."""
    binary = "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else "dnsmasq"
    port = free_port()
    proc = subprocess.Popen([binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                             "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
                             f"--port={port}", "--pid-file=", "--user=root", "--local=/test/",
                             "--host-record=ok.test,127.0.0.1", "--address=/ok.test/127.0.0.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return proc.poll() is not None and pytest.fail(proc.stderr.read().decode())

    wait_for("dnsmasq", listening)
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def blackbox(tools, tmp_path_factory):
    config = tmp_path_factory.mktemp("blackbox") / "blackbox.yml"
    ip4 = {"preferred_ip_protocol": "ip4"}
    config.write_text(yaml.safe_dump({"modules": {
        "http_2xx": {"prober": "http", "timeout": "5s", "http": ip4},
        "tcp_connect": {"prober": "tcp", "timeout": "5s", "tcp": ip4},
        "grpc": {"prober": "grpc", "timeout": "5s", "grpc": {**ip4, "service": "up", "tls": False}},
        "dns": {"prober": "dns", "timeout": "5s",
                "dns": {**ip4, "query_name": "ok.test", "query_type": "A"}},
    }}))
    port = free_port()
    proc = subprocess.Popen([str(K8S_BIN / "blackbox_exporter"), f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for("blackbox_exporter", lambda: http_get(f"{base}/-/healthy") is not None)

    def probe(module, target):
        return parse(http_get(f"{base}/probe?module={module}&target={target}", timeout=10) or "")

    yield probe
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def serve(tools, web, grpc_port, dns_port, tmp_path_factory):
    """`healthcheck serve` probing the same peers once; its /metrics, parsed."""
    work = tmp_path_factory.mktemp("serve")
    targets = {
        "web": f"http://127.0.0.1:{web}/ok",
        "web-down": f"http://127.0.0.1:{web}/down",
        "tcp": f"tcp://127.0.0.1:{web}",
        "grpc": f"grpc://127.0.0.1:{grpc_port}/up",
        "dns": f"dns://127.0.0.1:{dns_port}/ok.test?type=A",
    }
    (work / "targets.yaml").write_text(yaml.safe_dump({"targets": [
        {"name": name, "url": url, "interval": "1h"} for name, url in targets.items()]}))
    port = free_port()
    proc = subprocess.Popen([str(BINARY), "healthcheck", "serve", "--config", str(work / "targets.yaml"),
                             "--history", str(work / "history.jsonl"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def every_target_probed():
        text = http_get(f"http://127.0.0.1:{port}/metrics")
        if not text:
            return None
        families = parse(text)
        probed = {labels.get("target") for labels, _ in families.get("probe_success", (None, []))[1]}
        return families if probed >= set(targets) else None

    yield wait_for("every target probed once", every_target_probed)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def ours_for(families, target):
    """serve's `probe_*` families for one target, the `target` label dropped."""
    out = {}
    for name, (kind, samples) in families.items():
        mine = [({k: v for k, v in labels.items() if k != "target"}, value)
                for labels, value in samples if labels.get("target") == target]
        if name.startswith("probe_") and mine:
            out[name] = (kind, mine)
    return out


def assert_follows(ours, theirs, prober):
    assert ours, f"serve exposes nothing for the {prober} target"
    for name, (kind, samples) in ours.items():
        assert name in theirs, f"{name}: blackbox_exporter's {prober} prober has no such metric " \
                               f"(it has {sorted(theirs)})"
        their_kind, their_samples = theirs[name]
        assert kind == their_kind, f"{name}: {kind} here, {their_kind} in blackbox_exporter"
        their_labels = {frozenset(labels) for labels, _ in their_samples}
        for labels, _ in samples:
            assert frozenset(labels) in their_labels, \
                f"{name}{labels}: labels {sorted(labels)}, blackbox_exporter's {their_labels}"
        if "phase" in samples[0][0]:
            phases = {labels["phase"] for labels, _ in samples}
            theirs_phases = {labels["phase"] for labels, _ in their_samples}
            assert phases <= theirs_phases, f"{name}: phases {phases - theirs_phases} unknown upstream"


def value(families, name, **labels):
    values = [v for l, v in families[name][1] if all(l.get(k) == w for k, w in labels.items())]
    assert len(values) == 1, f"{name}{labels}: {families.get(name)}"
    return values[0]


def test_http_metrics_are_blackbox_exporters(serve, blackbox, web):
    for target, path, status in (("web", "ok", 200), ("web-down", "down", 503)):
        theirs = blackbox("http_2xx", f"http://127.0.0.1:{web}/{path}")
        ours = ours_for(serve, target)
        assert_follows(ours, theirs, "http")
        for name in ("probe_success", "probe_http_status_code"):
            assert value(ours, name) == value(theirs, name), f"{target}: {name}"
        assert value(ours, "probe_http_status_code") == status
        # The phases both measured on a plain-HTTP exchange.
        assert {l["phase"] for l, _ in ours["probe_http_duration_seconds"][1]} >= {"connect", "processing"}


def test_tcp_metrics_are_blackbox_exporters(serve, blackbox, web):
    theirs = blackbox("tcp_connect", f"127.0.0.1:{web}")
    ours = ours_for(serve, "tcp")
    assert_follows(ours, theirs, "tcp")
    assert value(ours, "probe_success") == value(theirs, "probe_success") == 1


def test_grpc_metrics_are_blackbox_exporters(serve, blackbox, grpc_port):
    theirs = blackbox("grpc", f"127.0.0.1:{grpc_port}")
    ours = ours_for(serve, "grpc")
    assert_follows(ours, theirs, "grpc")
    assert value(ours, "probe_success") == value(theirs, "probe_success") == 1
    if "probe_grpc_status_code" in ours:
        assert value(ours, "probe_grpc_status_code") == value(theirs, "probe_grpc_status_code") == 0
    serving = {"serving_status": "SERVING"}
    assert value(ours, "probe_grpc_healthcheck_response", **serving) == \
        value(theirs, "probe_grpc_healthcheck_response", **serving) == 1


def test_dns_metrics_are_blackbox_exporters(serve, blackbox, dns_port):
    theirs = blackbox("dns", f"127.0.0.1:{dns_port}")
    ours = ours_for(serve, "dns")
    assert_follows(ours, theirs, "dns")
    assert value(ours, "probe_success") == value(theirs, "probe_success") == 1
    for name in ("probe_dns_answer_rrs", "probe_dns_authority_rrs", "probe_dns_additional_rrs"):
        assert value(ours, name) == value(theirs, name), name
    assert value(ours, "probe_dns_answer_rrs") >= 1


@pytest.mark.parametrize("service", ["", "up", "down", "nope", "closed"])
def test_grpc_verdicts_are_grpc_health_probes(tools, grpc_port, tmp_path, service):
    port = free_port() if service == "closed" else grpc_port
    name = "" if service == "closed" else service
    upstream = subprocess.run([str(K8S_BIN / "grpc-health-probe"), f"-addr=127.0.0.1:{port}",
                               f"-service={name}", "-connect-timeout=2s", "-rpc-timeout=2s"],
                              capture_output=True, text=True, timeout=30)
    (tmp_path / "targets.yaml").write_text(yaml.safe_dump({"targets": [
        {"name": "g", "url": f"grpc://127.0.0.1:{port}/{name}".rstrip("/"), "timeout": "2s"}]}))
    ours = subprocess.run([str(BINARY), "healthcheck", "run", "--config", str(tmp_path / "targets.yaml"),
                           "--history", str(tmp_path / "history.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode in (0, 1), ours.stderr
    assert upstream.returncode in (0, 2, 3, 4), upstream.stderr
    expected = {"": 0, "up": 0, "down": 4, "nope": 3, "closed": 2}[service]
    assert upstream.returncode == expected, f"grpc-health-probe: {upstream.stderr}"
    assert (ours.returncode == 0) == (upstream.returncode == 0), \
        f"{service!r}: grpc-health-probe exit {upstream.returncode} ({upstream.stderr.strip()}), " \
        f"healthcheck run exit {ours.returncode}"
