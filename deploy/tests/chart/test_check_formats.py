"""`ferrostack webhook check --format`: the SARIF validates against the official SARIF 2.1.0 schema
(OASIS rtm.5, as Microsoft's own validator ships it; `scripts/tools.sh sarif`), the JUnit XML is
read by junitparser as CI systems read it, and JSON, SARIF, JUnit and text report the same
findings and exit code, on a chart profile and on a manifest that breaks policies."""

import json
import subprocess

import jsonschema
import pytest
from junitparser import Failure, JUnitXml

from conftest import ROOT, ferrostack_binary, render_text

SCHEMA = ROOT / ".tools" / "sarif" / "sarif-2.1.0-rtm.5.json"
BROKEN = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations: {ignore-check.ferrostack.io/probes: "a batch worker: no port to probe"}
spec:
  template:
    spec:
      containers: [{name: web, image: "nginx:latest"}]
---
apiVersion: v1
kind: Pod
metadata: {name: tidy, namespace: shop}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: ghcr.io/x/y:1.0
    resources: {requests: {cpu: 10m, memory: 10Mi}, limits: {memory: 20Mi}}
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
    livenessProbe: {tcpSocket: {port: 1}}
    readinessProbe: {tcpSocket: {port: 2}}
"""


@pytest.fixture(scope="module", params=["broken", "chart-full"])
def manifest(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("check") / f"{request.param}.yaml"
    path.write_text(BROKEN if request.param == "broken" else render_text("full"))
    return path


def check(path, fmt):
    out = subprocess.run([ferrostack_binary(), "webhook", "check", "--format", fmt, str(path)],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode in (0, 1), out.stderr
    return out


def test_sarif_is_valid_and_carries_every_finding(manifest):
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} missing: scripts/tools.sh sarif (make test-chart runs it)")
    text, sarif = check(manifest, "text"), check(manifest, "sarif")
    log = json.loads(sarif.stdout)
    jsonschema.validate(log, json.loads(SCHEMA.read_text()))
    results = log["runs"][0]["results"]
    rules = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rules
    finding_lines = [l for l in text.stdout.splitlines() if ": error[" in l or ": warning[" in l]
    assert len(results) == len(finding_lines)
    assert sum(r["level"] == "error" for r in results) == sum(": error[" in l for l in finding_lines)
    assert sarif.returncode == text.returncode


def test_junit_is_read_by_junitparser_with_a_case_per_object(manifest):
    out, data = check(manifest, "junit"), json.loads(check(manifest, "json").stdout)
    xml = JUnitXml.fromstring(out.stdout)
    cases = [case for suite in xml for case in suite]
    assert len(cases) == data["summary"]["workloads"]
    failed = {case.name for case in cases if any(isinstance(r, Failure) for r in case.result)}
    denied = {f"{f['kind']}/{f['name']} (document {f['document']})" for f in data["findings"]
              if f["severity"] == "error"}
    assert failed == denied
    assert (xml.tests, xml.failures) == (len(cases), len(denied))


def test_json_agrees_with_text_and_the_exit_code(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    text, out = check(path, "text"), check(path, "json")
    data = json.loads(out.stdout)
    summary = data["summary"]
    assert out.returncode == text.returncode == summary["exitCode"] == 1
    assert f"{summary['errors']} errors, {summary['warnings']} warnings" in text.stdout
    # The ignore annotation silenced the Deployment's probes findings, and only those.
    assert summary["ignored"] == 2
    assert not [f for f in data["findings"] if f["policy"] == "probes"]
    # The Pod is the second document, starting on the line after the separator.
    pod = [f for f in data["findings"] if f["kind"] == "Pod"]
    assert pod and all(f["document"] == 2 and f["line"] == BROKEN.splitlines().index("---") + 1
                       for f in pod)
