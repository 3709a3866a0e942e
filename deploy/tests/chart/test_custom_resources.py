"""The chart's custom resources refer to each other and to its core objects consistently (a
Rollout to its Deployment, its stable and canary Services, the TraefikService users' requests
reach through an IngressRoute, and its AnalysisTemplates; a ServiceMonitor
to a Service port; a Certificate to its Issuer and webhook). Their shapes are judged by the real
API server against the upstream CRDs: deploy/tests/cluster/test_crds.py."""

import re
import subprocess

import pytest
import yaml

from conftest import CHART, NAMESPACE, find, name, one, render, tool


FULL = render("full")
# The custom resources the full profile renders (deploy/tests/cluster/test_crds.py
# creates each on the real API server against its upstream CRD; here: how they refer to each other).
CUSTOM_KINDS = {"Rollout", "AnalysisTemplate", "TraefikService", "IngressRoute", "ScaledObject",
                "ServiceMonitor", "PrometheusRule", "Certificate", "Issuer"}


def test_full_profile_renders_every_custom_resource():
    kinds = {d["kind"] for d in FULL}
    assert CUSTOM_KINDS <= kinds, CUSTOM_KINDS - kinds


def test_no_custom_resources_by_default():
    groups = {d["apiVersion"].split("/")[0] for d in render("default") if "/" in d["apiVersion"]}
    assert not groups & {"argoproj.io", "traefik.io", "keda.sh", "cert-manager.io",
                         "monitoring.coreos.com", "gateway.networking.k8s.io"}


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_rollout_references(role):
    n = name(role)
    ro = one(FULL, "Rollout", n)
    dep = one(FULL, "Deployment", n)
    assert ro["spec"]["workloadRef"]["name"] == n
    assert dep["spec"]["replicas"] == 0, "the Rollout runs the pods, not the Deployment"
    assert ro["spec"]["selector"] == dep["spec"]["selector"]
    canary = ro["spec"]["strategy"]["canary"]
    assert set(canary["trafficRouting"]) == {"traefik"}, "one router: the one users' requests pass"
    steps = canary["steps"]
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


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_users_requests_follow_the_canary_weights(role):
    """The API's host reaches the pods only through the TraefikService whose weights Argo
    Rollouts' Traefik router rewrites (argo-rollouts rollout/trafficrouting/traefik: it finds
    spec.weighted.services[] by the Rollout's canaryService and stableService names and sets
    weight and 100 - weight): an IngressRoute for the host points at it, the Ingress no longer
    routes the host (it would reach the pods around the weights), and each weighted entry is a
    Service selecting the API's pods on its port."""
    n = name(role)
    canary = one(FULL, "Rollout", n)["spec"]["strategy"]["canary"]
    ts = one(FULL, "TraefikService", canary["trafficRouting"]["traefik"]["weightedTraefikServiceName"])
    weights = {s["name"]: s["weight"] for s in ts["spec"]["weighted"]["services"]}
    assert weights == {canary["stableService"]: 100, canary["canaryService"]: 0}
    api = one(FULL, "Service", n)
    for entry in ts["spec"]["weighted"]["services"]:
        svc = one(FULL, "Service", entry["name"])
        assert svc["spec"]["selector"] == api["spec"]["selector"]
        assert entry["port"] in {p["port"] for p in svc["spec"]["ports"]}
        assert entry.get("kind", "Service") == "Service"
    # the profile keeps the chart's hosts
    (host,) = [h["host"] for h in yaml.safe_load((CHART / "values.yaml").read_text())["ingress"]["hosts"]
               if h["component"] == role]
    routes = [r for ir in find(FULL, "IngressRoute") for r in ir["spec"]["routes"]
              if r["match"] == f"Host(`{host}`)"]
    assert [s for r in routes for s in r["services"]] == [{"kind": "TraefikService", "name": ts["metadata"]["name"]}]
    ingress_hosts = {rule["host"] for ing in find(FULL, "Ingress") for rule in ing["spec"]["rules"]}
    assert host not in ingress_hosts, "the Ingress would send the host's requests around the canary"
    assert not find(FULL, "HTTPRoute"), "an HTTPRoute to the API would bypass the weights too"
    # the one certificate still covers the host (the IngressRoute's router finds it by SNI)
    assert host in {h for ing in find(FULL, "Ingress") for tls in ing["spec"]["tls"] for h in tls["hosts"]}


def test_stable_and_canary_services_are_not_scraped_twice():
    """The ServiceMonitors select each API's own Service only: the stable and canary Services
    select the same pods, and a match would scrape every pod two more times."""
    services = [d for d in FULL if d["kind"] == "Service"]
    for sm in find(FULL, "ServiceMonitor"):
        want = sm["spec"]["selector"]["matchLabels"]
        matched = [s["metadata"]["name"] for s in services
                   if all(s["metadata"]["labels"].get(k) == v for k, v in want.items())]
        assert len(matched) == 1, (sm["metadata"]["name"], matched)


def test_the_ingress_certificate_comes_from_an_issuer_the_platform_ships():
    """cert-manager's ingress-shim issues ferrostack-tls from the ClusterIssuer the annotation
    names: it must be one deploy/kind/cluster-issuer.yaml applies (up.sh, cert_manager.yml)."""
    shipped = {d["metadata"]["name"] for d in yaml.safe_load_all(
        (CHART.parents[1] / "kind" / "cluster-issuer.yaml").read_text()) if d["kind"] == "ClusterIssuer"}
    (ing,) = find(FULL, "Ingress")
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] in shipped


@pytest.mark.parametrize("sets,message", [
    (("httpRoute.enabled=true",), "httpRoute.parentRefs"),
    (("canary.enabled=true", "httpRoute.enabled=true", "httpRoute.parentRefs[0].name=web"),
     "would bypass the canary's weights"),
])
def test_chart_refuses_a_route_to_nowhere_or_around_the_canary(sets, message):
    """No Gateway is installed, so an HTTPRoute must name the cluster's own; and an HTTPRoute to
    an API the canary splits would reach its pods around the weights."""
    out = subprocess.run([tool("helm"), "template", "fs", str(CHART), "--namespace", NAMESPACE,
                          *[a for s in sets for a in ("--set", s)]], capture_output=True, text=True)
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_http_routes_point_at_services():
    docs = render("default", "httpRoute.enabled=true", "httpRoute.parentRefs[0].name=web")
    assert find(docs, "HTTPRoute")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for r in find(docs, "HTTPRoute"):
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
