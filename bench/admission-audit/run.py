#!/usr/bin/env python3
"""`ferrostack webhook audit` over PODS bare pods (10,000 by default) on the real API server:
peak RSS and wall time, against `kubectl get pods -A -o json` over the same pods (a baseline
that holds the whole list, as an audit reading one huge response would), measured side by side
in this run.

Starts the control plane (scripts/cluster.sh up), creates the pods 500 to a request with a
scheduler nobody runs (so neither the scheduler nor KWOK adds load), then measures each command
with /usr/bin/time. Writes bench/admission-audit/results.md.

Environment: PODS (10000), BIN (the ferrostack binary; the newer of the release and debug builds).
"""
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "k8s" / "bin" / "kubectl"
PODS = int(os.environ.get("PODS", 10_000))
NS = "audit-bench"


def pod(i):
    """A realistic pod: two containers, probes, resources, a few labels; some policy findings."""
    container = {"name": "app", "image": f"ghcr.io/example/app:1.{i % 7}",
                 "ports": [{"containerPort": 8080, "name": "http"}],
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                               "limits": {"memory": "128Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                 "env": [{"name": f"SETTING_{n}", "value": f"value-{i}-{n}"} for n in range(8)]}
    sidecar = dict(container, name="sidecar", image="nginx:latest", ports=[])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i:05d}", "namespace": NS,
                         "labels": {"app.kubernetes.io/name": "app", "shard": str(i % 16)}},
            "spec": {"schedulerName": "nobody", "containers": [container, sidecar]}}


def kubectl(kubeconfig, *args, input=None, stdout=subprocess.PIPE):
    return subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, *args], input=input,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, check=True)


def measured(command, stdin=None):
    """(peak RSS in MiB, wall seconds, stdout) of one run under /usr/bin/time -v."""
    started = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-v", *command], stdin=stdin, capture_output=True,
                         text=True)
    wall = time.monotonic() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    if out.returncode not in (0, 1) or not rss:
        sys.exit(f"{command[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return int(rss.group(1)) / 1024, wall, out.stdout


def create_pods(kubeconfig):
    kubectl(kubeconfig, "create", "namespace", NS)
    for start in range(0, PODS, 500):
        items = [pod(i) for i in range(start, min(start + 500, PODS))]
        kubectl(kubeconfig, "create", "-f", "-",
                input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))


def binary():
    if os.environ.get("BIN"):
        return os.environ["BIN"]
    # The newer of the two builds: a stale release binary may predate `webhook audit`.
    builds = [p for p in (ROOT / "target" / b / "ferrostack" for b in ("release", "debug"))
              if p.exists()]
    if not builds:
        sys.exit("build ferrostack first (cargo build --release -p ferrostack)")
    return str(max(builds, key=lambda p: p.stat().st_mtime))


def measure(kubeconfig, directory):
    bin_ = binary()
    audit = measured([bin_, "webhook", "audit", "--kubeconfig", kubeconfig])
    summary = json.loads(audit[2].splitlines()[-1])["summary"]
    kubectl_rss = measured([str(KUBECTL), "--kubeconfig", kubeconfig, "get", "pods", "-A",
                            "-o", "json"])
    listed = len(kubectl_rss[2].encode())
    return bin_, summary, audit, kubectl_rss, listed


def report(bin_, summary, audit, kubectl_rss, listed, started):
    rows = [("`webhook audit --kubeconfig` (API, 100 a page)", audit),
            ("`kubectl get pods -A -o json` (baseline: the whole list)", kubectl_rss)]
    lines = [f"Run {started} UTC, {PODS:,} bare pods (two containers each) on the harness's "
             f"API server, `{Path(bin_).relative_to(ROOT) if bin_.startswith(str(ROOT)) else bin_}`; "
             f"audited objects {summary['objects']:,}, findings {summary['errors'] + summary['warnings']:,}.",
             "", "| command | peak RSS | wall | RSS vs audit |", "|---|---|---|---|"]
    for name, (rss, wall, _) in rows:
        lines.append(f"| {name} | {rss:.1f} MiB | {wall:.1f} s | {rss / audit[0]:.2f}× |")
    lines += ["", f"The list as JSON is {listed / 2**20:.1f} MiB: over the 16 MiB every file input of "
              "`webhook audit FILE` (and `check`) is capped at, so a cluster this size is audited "
              "through the API, whose pages keep memory flat."]
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "results.md").write_text(text)


def main():
    directory = Path(tempfile.mkdtemp(prefix="ferrostack-audit-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    up = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "up", str(directory)],
                        capture_output=True, text=True, check=True)
    kubeconfig = up.stdout.strip().splitlines()[-1]
    try:
        create_pods(kubeconfig)
        report(*measure(kubeconfig, directory), started)
    finally:
        subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "down", str(directory)],
                       capture_output=True, text=True)


if __name__ == "__main__":
    main()
