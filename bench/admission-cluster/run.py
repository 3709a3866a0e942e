#!/usr/bin/env python3
"""Pod CREATE latency through the real API server, with and without ferrostack's webhooks.

Starts the control plane (scripts/cluster.sh up), `ferrostack webhook serve` (release build) on
loopback, and registers the chart's own webhook configurations (kind profile) pointed at it by
URL, as deploy/tests/cluster/test_webhook.py does. Rounds alternate between the two modes
(webhooks registered / none); each round POSTs PODS pods from THREADS keep-alive HTTPS
connections with the admin client certificate. Pods use a scheduler nobody runs, so neither the
scheduler nor KWOK adds load; each round's pods are deleted before the next round.
Prints and writes bench/admission-cluster/results.md.

Environment: PODS (per round, 500), ROUNDS (per mode, 4), THREADS (8), BIN (the webhook binary).
"""
import base64
import datetime
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ferrostack"
KUBECTL = ROOT / ".tools" / "k8s" / "bin" / "kubectl"
HELM = ROOT / ".tools" / "bin" / "helm"
HOME, NS = "bench-webhook-home", "bench"
PODS, ROUNDS, THREADS = (int(os.environ.get(k, d)) for k, d in
                         (("PODS", 500), ("ROUNDS", 4), ("THREADS", 8)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubectl(kubeconfig, *args, input=None, check=True):
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], input=input,
                          capture_output=True, text=True, check=check)


def configurations(port, ca_pem):
    """The kind profile's webhook configurations, as the patch hook leaves them, by URL."""
    out = subprocess.run([str(HELM), "template", "bench", str(CHART), "--namespace", HOME,
                          "-f", str(CHART / "ci" / "kind-values.yaml")],
                         capture_output=True, text=True, check=True).stdout
    configs = [d for d in yaml.safe_load_all(out)
               if d and d["kind"].endswith("WebhookConfiguration")]
    for config in configs:
        config["metadata"] = {"name": config["metadata"]["name"]}
        for hook in config["webhooks"]:
            if config["kind"].startswith("Validating"):
                hook["failurePolicy"] = "Fail"  # what the patch hook sets with the caBundle
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}",
                                    "caBundle": base64.b64encode(ca_pem).decode()}
    return yaml.safe_dump_all(configs)


def pod(name):
    """Compliant once mutated: the mutating webhook fills seccomp, allowPrivilegeEscalation
    and requests, then validation allows it (probes and read-only root are warnings)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "bench"}},
        "spec": {"schedulerName": "nobody", "containers": [{
            "name": "app", "image": "nginx:1.27.3", "resources": {"limits": {"memory": "64Mi"}},
            "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}]}})


class Client:
    """The admin kubeconfig's server and client certificate, one connection per thread."""

    def __init__(self, kubeconfig):
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port
        self.ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.ctx.load_cert_chain(user["client-certificate"], user["client-key"])

    def create(self, names, out, errors):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx)
        for name in names:
            start = time.perf_counter()
            conn.request("POST", f"/api/v1/namespaces/{NS}/pods", body=pod(name),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            out.append(time.perf_counter() - start)
            if resp.status != 201:
                errors.append(resp.status)
        conn.close()


def run_round(client, tag):
    names = [f"{tag}-{i}" for i in range(PODS)]
    lat, errors, threads = [], [], []
    for t in range(THREADS):
        th = threading.Thread(target=client.create, args=(names[t::THREADS], lat, errors))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    if errors:
        sys.exit(f"round {tag}: {len(errors)} creates failed, e.g. HTTP {errors[0]}")
    return lat


def wait_for(kubeconfig, registered):
    """Until the API server's informer has caught up: a floating tag is denied or admitted."""
    for _ in range(200):
        out = kubectl(kubeconfig, "-n", NS, "run", "probe", "--image=nginx:latest",
                      "--dry-run=server", check=False)
        if ("denied" in out.stderr) == registered:
            return
        time.sleep(0.1)
    sys.exit("the API server did not pick up the webhook configuration change")


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def measure(kubeconfig, config_yaml):
    client, samples = Client(kubeconfig), {"none": [], "webhooks": []}
    for r in range(ROUNDS):
        # Interleaved, and the order flips every round so neither mode always goes first.
        for mode in (("none", "webhooks") if r % 2 == 0 else ("webhooks", "none")):
            if mode == "webhooks":
                kubectl(kubeconfig, "apply", "-f", "-", input=config_yaml)
            else:
                kubectl(kubeconfig, "delete", "validatingwebhookconfiguration,"
                        "mutatingwebhookconfiguration", "bench-webhook", "--ignore-not-found")
            wait_for(kubeconfig, mode == "webhooks")
            samples[mode] += run_round(client, f"r{r}-{mode}")
            kubectl(kubeconfig, "-n", NS, "delete", "pods", "--all", "--wait=true")
            print(f"round {r} {mode}: {PODS} pods", file=sys.stderr)
    return samples


def report(samples, started, binary):
    ms = {m: (percentile(v, 50) * 1e3, percentile(v, 99) * 1e3, len(v)) for m, v in samples.items()}
    none, hooks = ms["none"], ms["webhooks"]
    lines = [
        f"Measured {started} UTC on {os.cpu_count()} cores (shared: other work may run); "
        f"{ROUNDS} rounds per mode, interleaved, {PODS} Pod CREATEs per round from {THREADS} "
        f"keep-alive connections; webhook: `{binary}`.", "",
        "| mode | pods | p50 ms | p99 ms |", "|---|---:|---:|---:|",
        f"| API server alone | {none[2]} | {none[0]:.2f} | {none[1]:.2f} |",
        f"| with ferrostack's webhooks (mutate + validate) | {hooks[2]} | {hooks[0]:.2f} | "
        f"{hooks[1]:.2f} |", "",
        f"Ratio with / without: p50 {hooks[0] / none[0]:.2f}x, p99 {hooks[1] / none[1]:.2f}x "
        f"(p99 +{(hooks[1] / none[1] - 1) * 100:.0f} %; target: at most +10 %).", ""]
    text = "\n".join(lines)
    print(text)
    return text


def main():
    binary = os.environ.get("BIN") or str(next(
        p for p in (ROOT / "target" / "release" / "ferrostack",
                    ROOT / "target" / "bench" / "release" / "ferrostack") if p.exists()))
    directory = Path(tempfile.mkdtemp(prefix="ferrostack-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    up = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "up", str(directory)],
                        capture_output=True, text=True, check=True)
    kubeconfig = up.stdout.strip().splitlines()[-1]
    proc = None
    try:
        port, metrics = free_port(), free_port()
        ca = directory / "webhook-ca.pem"
        proc = subprocess.Popen([binary, "webhook", "serve", "--self-signed", "--ca-file", str(ca),
                                 "--host", "127.0.0.1", "--port", str(port), "--metrics-port",
                                 str(metrics), "--namespace", HOME, "--log-level", "warn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not ca.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        kubectl(kubeconfig, "create", "namespace", NS)
        kubectl(kubeconfig, "label", "namespace", NS, "ferrostack.io/admission=enforce")
        samples = measure(kubeconfig, configurations(port, ca.read_bytes()))
        text = report(samples, started, Path(binary).relative_to(ROOT))
        (Path(__file__).parent / "results.md").write_text(
            "# Pod CREATE through the API server, with and without the webhooks\n\n"
            "`bench/admission-cluster/run.py` (see its docstring).\n\n" + text)
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "down", str(directory)],
                       capture_output=True, text=True)


if __name__ == "__main__":
    main()
