"""The chart's custom resources refer to each other and to its core objects consistently (a
Rollout to its Deployment, VirtualService, DestinationRule and AnalysisTemplates; a ServiceMonitor
to a Service port; a Certificate to its Issuer and webhook). Their shapes are judged by the real
API server against the upstream CRDs: deploy/tests/cluster/test_custom_resources.py."""

import re
import subprocess

import pytest
import yaml

from conftest import CHART, NAMESPACE, find, name, one, render, tool


FULL = render("full")
# The custom resources the full profile renders (deploy/tests/cluster/test_custom_resources.py
# creates each on the real API server against its upstream CRD; here: how they refer to each other).
CUSTOM_KINDS = {"Rollout", "AnalysisTemplate", "VirtualService", "DestinationRule", "ScaledObject",
                "ServiceMonitor", "PrometheusRule", "Certificate", "Issuer", "HTTPRoute"}


def test_full_profile_renders_every_custom_resource():
    kinds = {d["kind"] for d in FULL}
    assert CUSTOM_KINDS <= kinds, CUSTOM_KINDS - kinds


def test_no_custom_resources_by_default():
    groups = {d["apiVersion"].split("/")[0] for d in render("default") if "/" in d["apiVersion"]}
    assert not groups & {"argoproj.io", "networking.istio.io", "keda.sh", "cert-manager.io",
                         "monitoring.coreos.com", "gateway.networking.k8s.io"}


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_rollout_references(role):
    n = name(role)
    ro = one(FULL, "Rollout", n)
    dep = one(FULL, "Deployment", n)
    assert ro["spec"]["workloadRef"]["name"] == n
    assert dep["spec"]["replicas"] == 0, "the Rollout runs the pods, not the Deployment"
    assert ro["spec"]["selector"] == dep["spec"]["selector"]
    istio = ro["spec"]["strategy"]["canary"]["trafficRouting"]["istio"]
    vs = one(FULL, "VirtualService", istio["virtualService"]["name"])
    dr = one(FULL, "DestinationRule", istio["destinationRule"]["name"])
    route = next(r for r in vs["spec"]["http"] if r["name"] in istio["virtualService"]["routes"])
    weights = {d["destination"]["subset"]: d["weight"] for d in route["route"]}
    assert weights == {"stable": 100, "canary": 0}
    assert {s["name"] for s in dr["spec"]["subsets"]} == {
        istio["destinationRule"]["stableSubsetName"], istio["destinationRule"]["canarySubsetName"]}
    assert dr["spec"]["host"] == vs["spec"]["hosts"][0] == one(FULL, "Service", n)["metadata"]["name"]
    steps = ro["spec"]["strategy"]["canary"]["steps"]
    assert any("setWeight" in s for s in steps) and any("analysis" in s for s in steps)
    assert all(s["pause"].get("duration") for s in steps if "pause" in s), "no indefinite pause"
    for s in steps:
        if "analysis" in s:
            for t in s["analysis"]["templates"]:
                one(FULL, "AnalysisTemplate", t["templateName"])
            assert {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}} in s["analysis"]["args"]
    # The autoscaler targets the Rollout, not the Deployment behind it.
    scalers = find(FULL, "HorizontalPodAutoscaler", n) + find(FULL, "ScaledObject", n)
    assert len(scalers) == 1
    assert scalers[0]["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_analysis_template_queries():
    at = one(FULL, "AnalysisTemplate", name("backend-api"))
    metrics = {m["name"]: m for m in at["spec"]["metrics"]}
    assert set(metrics) == {"success-rate", "p99-latency"}
    declared = {a["name"] for a in at["spec"]["args"]}
    for m in metrics.values():
        q = m["provider"]["prometheus"]["query"]
        used = set(re.findall(r"\{\{args\.([a-z-]+)\}\}", q))
        assert used and used <= declared, (used, declared)
        assert "{{ " not in q, "Helm must leave {{args.x}} for Argo, escaped"
    assert "http_requests_total" in metrics["success-rate"]["provider"]["prometheus"]["query"]
    assert 'status!~"5.."' in metrics["success-rate"]["provider"]["prometheus"]["query"]
    assert "histogram_quantile(0.99" in metrics["p99-latency"]["provider"]["prometheus"]["query"]
    assert "http_request_duration_seconds_bucket" in metrics["p99-latency"]["provider"]["prometheus"]["query"]
    assert metrics["success-rate"]["successCondition"].endswith(">= 0.99")
    assert metrics["p99-latency"]["successCondition"].endswith("<= 4")


def test_scaled_object_cron_before_peak():
    so = one(FULL, "ScaledObject", name("backend-api"))
    crons = [t for t in so["spec"]["triggers"] if t["type"] == "cron"]
    assert crons, "a cron trigger scales out before known peaks"
    for t in crons:
        assert t["metadata"]["start"] != t["metadata"]["end"]
        assert int(t["metadata"]["desiredReplicas"]) <= so["spec"]["maxReplicaCount"]
    assert so["spec"]["minReplicaCount"] >= 2
    assert any(t["type"] == "cpu" for t in so["spec"]["triggers"])


def test_service_monitors():
    services = {d["metadata"]["name"]: d for d in FULL if d["kind"] == "Service"}
    sms = find(FULL, "ServiceMonitor")
    jobs = set()
    for sm in sms:
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        svc = next(s for s in services.values()
                   if all(s["metadata"]["labels"].get(k) == v
                          for k, v in sm["spec"]["selector"]["matchLabels"].items()))
        ports = {p["name"] for p in svc["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            assert ep["port"] in ports
        jobs.add(svc["metadata"]["labels"][sm["spec"]["jobLabel"]])
    # The Prometheus job label is the component name (CONTRACT.md metrics catalog).
    assert jobs == {"backend-api", "data-api", "healthcheck", "webhook", "logship"}


def test_service_monitor_release_label_is_configurable():
    docs = render("full", "monitoring.serviceMonitor.labels.release=prom")
    assert {sm["metadata"]["labels"]["release"] for sm in find(docs, "ServiceMonitor")} == {"prom"}


def test_prometheus_rule_is_built_from_the_rule_files():
    pr = one(FULL, "PrometheusRule", "fs")
    expected = []
    for f in sorted((CHART / "files" / "rules").glob("*.yaml")):
        expected += yaml.safe_load(f.read_text())["groups"]
    assert pr["spec"]["groups"] == expected
    # Annotations keep Prometheus' own templating.
    text = yaml.safe_dump(pr)
    if "$labels" in text:
        assert "{{ $labels." in text


def test_dashboards():
    cms = [d for d in find(FULL, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert len(cms) == len(files) >= 1
    for cm in cms:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key, body), = cm["data"].items()
        assert key.endswith(".json")
        assert (CHART / "files" / "dashboards" / key).read_text().strip() == body.strip()


def test_certificate_serves_the_webhook():
    cert = one(FULL, "Certificate", name("webhook"))
    svc = f'{name("webhook")}.{NAMESPACE}.svc'
    assert svc in cert["spec"]["dnsNames"]
    dep = one(FULL, "Deployment", name("webhook"))
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == cert["spec"]["secretName"]
    issuer = cert["spec"]["issuerRef"]
    one(FULL, issuer["kind"], issuer["name"])
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        cfg = one(FULL, kind, name("webhook"))
        assert cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f'{NAMESPACE}/{cert["metadata"]["name"]}'


def test_http_routes_point_at_services():
    services = {d["metadata"]["name"]: d for d in FULL if d["kind"] == "Service"}
    for r in find(FULL, "HTTPRoute"):
        for rule in r["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                svc = services[ref["name"]]
                assert ref["port"] in {p["port"] for p in svc["spec"]["ports"]}


def promtool_check(tmp_path, groups):
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"groups": groups}))
    return subprocess.run([tool("promtool"), "check", "rules", str(f)], capture_output=True, text=True)


def test_analysis_queries_are_valid_promql(tmp_path):
    """promtool parses each AnalysisTemplate query (args filled in as Argo would)."""
    rules = []
    for at in find(FULL, "AnalysisTemplate"):
        for m in at["spec"]["metrics"]:
            q = m["provider"]["prometheus"]["query"]
            for arg in ("namespace", "job", "canary-hash"):
                q = q.replace("{{args.%s}}" % arg, "x")
            rules.append({"record": f'ferrostack:{at["metadata"]["name"].replace("-", "_")}:{m["name"].replace("-", "_")}', "expr": q})
    out = promtool_check(tmp_path, [{"name": "analysis", "rules": rules}])
    assert out.returncode == 0, out.stdout + out.stderr
    assert promtool_check(tmp_path, [{"name": "bad", "rules": [{"record": "x", "expr": "sum(rate(x[2m])"}]}]).returncode != 0


def test_prometheus_rule_groups_pass_promtool(tmp_path):
    out = promtool_check(tmp_path, one(FULL, "PrometheusRule", "fs")["spec"]["groups"])
    assert out.returncode == 0, out.stdout + out.stderr
