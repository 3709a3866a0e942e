"""Structural tests of the alert rules, their promtool tests, the Grafana dashboards, the
metric-name list and the chart's copies of the rules and dashboards."""
import filecmp
import re

import pytest
import yaml

from conftest import OBS, ROOT
from promql import base_name, metric_names, promtool_parse

DS_REF = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def alerts(rule_files):
    for fname, doc in rule_files.items():
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield fname, rule


def dashboard_targets(dashboards):
    for fname, dash in dashboards.items():
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                yield fname, dash, panel, target


def substitute_vars(expr: str, names: set[str]) -> str:
    def repl(m):
        name = m.group(1) or m.group(2)
        if name in GRAFANA_VARS:
            return GRAFANA_VARS[name]
        assert name in names, f"undefined dashboard variable ${name} in {expr!r}"
        return ".*"
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


# --- PromQL helper self-test: the extractor must see what is there, and nothing else ----------

def test_metric_extractor():
    expr = ('sum by (job, le) (rate(http_request_duration_seconds_bucket{job=~"$job", route!="/x"}[5m] offset 1h))'
            ' / on (job) group_left(version) max(ferrostack_build_info) > 1e9 and time() - up')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "ferrostack_build_info", "up"}
    assert base_name("http_request_duration_seconds_bucket", {"http_request_duration_seconds"}) == \
        "http_request_duration_seconds"
    assert base_name("http_requests_total", {"http_request_duration_seconds"}) == "http_requests_total"


# --- rules --------------------------------------------------------------------------------

def test_every_alert_has_severity_and_text(rule_files):
    names = []
    for fname, rule in alerts(rule_files):
        names.append(rule["alert"])
        assert rule["alert"].startswith("Ferrostack"), rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, (fname, rule["alert"])
        ann = rule.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), (fname, rule["alert"])
    assert len(names) == len(set(names)), "duplicate alert names"
    # issue 7 item 3: the alerts the platform promised
    required = {
        "FerrostackServiceDown", "FerrostackHighErrorRatio", "FerrostackHighLatencyP99",
        "FerrostackCPUNearLimit", "FerrostackMemoryNearLimit", "FerrostackErrorLogRateIncrease",
        "FerrostackHealthcheckFailing", "FerrostackHealthcheckCronJobStale", "FerrostackLogshipBacklog",
        "FerrostackLogshipOldestPendingTooOld", "FerrostackWebhookErrors", "FerrostackWebhookSlow",
        "FerrostackCanaryAnalysisFailing",
    }
    assert required <= set(names), required - set(names)


def test_every_alert_has_a_firing_and_a_silent_unit_test(rule_files):
    fires, silent = set(), set()
    rule_paths = set()
    for test_file in sorted((OBS / "tests").glob("*_test.yaml")):
        doc = yaml.safe_load(test_file.read_text())
        rule_paths |= {(test_file.parent / p).resolve() for p in doc["rule_files"]}
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    all_alerts = {rule["alert"] for _, rule in alerts(rule_files)}
    assert all_alerts - fires == set(), f"alerts never shown firing: {all_alerts - fires}"
    assert all_alerts - silent == set(), f"alerts never shown silent: {all_alerts - silent}"
    assert rule_paths == {p.resolve() for p in (OBS / "rules").glob("*.yaml")}, "a rule file has no test file"


# --- dashboards ----------------------------------------------------------------------------

def test_dashboards_present(dashboards):
    assert set(dashboards) == {"ferrostack-red.json", "ferrostack-healthcheck.json",
                               "ferrostack-logship.json", "ferrostack-webhook.json"}
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", ["ferrostack-red.json", "ferrostack-healthcheck.json",
                                  "ferrostack-logship.json", "ferrostack-webhook.json"])
def test_dashboard_model(dashboards, name):
    dash = dashboards[name]
    for key in ("uid", "title", "schemaVersion", "templating", "annotations", "panels"):
        assert key in dash, key
    assert 8 <= len(dash["uid"]) <= 40
    assert dash["id"] is None, "exported dashboards carry no database id"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DS_REF, var["name"]
    ids, cells = set(), set()
    for panel in dash["panels"]:
        assert panel["id"] not in ids, f"duplicate panel id {panel['id']}"
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {panel['title']!r} overlaps another"
                cells.add((x, y))
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DS_REF, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DS_REF, panel["title"]
            assert target["expr"].strip()
    # the only datasource uid in the whole document is the variable
    text = str(dash)
    assert set(re.findall(r"'uid': '([^']*)'", text)) <= {"${datasource}", "-- Grafana --", dash["uid"]}


def test_dashboard_promql_parses(dashboards):
    exprs = {}
    for fname, dash, panel, target in dashboard_targets(dashboards):
        names = {v["name"] for v in dash["templating"]["list"]}
        exprs[f"{fname}:{panel['title']}:{target['refId']}"] = substitute_vars(target["expr"], names)
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                q = var["query"]["query"]
                inner = re.fullmatch(r"label_values\((.*), *\w+\)", q)
                assert inner, q
                exprs[f"{fname}:var:{var['name']}"] = substitute_vars(inner.group(1), names)
    assert len(exprs) >= 40
    res = promtool_parse(exprs)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in res.stdout


def test_promtool_parse_rejects_bad_promql():
    res = promtool_parse({"bad": "sum by (job (rate(http_requests_total[5m]))"})
    assert res.returncode != 0


# --- metric names --------------------------------------------------------------------------

def used_metrics(rule_files, dashboards, histograms):
    in_rules, in_dashboards = set(), set()
    for _, doc in rule_files.items():
        for group in doc["groups"]:
            for rule in group["rules"]:
                in_rules |= {base_name(n, histograms) for n in metric_names(rule["expr"])}
    for _, _, _, target in dashboard_targets(dashboards):
        in_dashboards |= {base_name(n, histograms) for n in metric_names(target["expr"])}
    return in_rules, in_dashboards


def test_metric_list_matches_rules_and_dashboards(rule_files, dashboards, metrics_list):
    ours, external = metrics_list["ferrostack"], metrics_list["external"]
    histograms = {n for n, m in ours.items() if m["type"] == "histogram"}
    in_rules, in_dashboards = used_metrics(rule_files, dashboards, histograms)
    assert in_dashboards - set(ours) == set(), "dashboards may only use metrics ferrostack exports"
    assert in_rules - set(ours) - set(external) == set(), "rules use a metric missing from metrics.yaml"
    assert set(ours) | set(external) == in_rules | in_dashboards, "metrics.yaml lists a metric nobody uses"
    assert not set(ours) & set(external)
    for name, meta in ours.items():
        assert meta["type"] in {"counter", "gauge", "histogram"}, name
        assert (meta["type"] == "counter") == name.endswith("_total"), name
        assert meta["roles"], name


# --- the chart's copies (make chart-assets) -----------------------------------------------

def test_chart_copies_are_identical():
    files = ROOT / "deploy" / "helm" / "ferrostack" / "files"
    for sub, pattern in (("rules", "*.yaml"), ("dashboards", "*.json")):
        src = sorted(p.name for p in (OBS / sub).glob(pattern))
        dst = sorted(p.name for p in (files / sub).glob(pattern))
        assert src == dst, f"run `make chart-assets`: files/{sub} differs"
        _, mismatch, errors = filecmp.cmpfiles(OBS / sub, files / sub, src, shallow=False)
        assert not mismatch and not errors, f"run `make chart-assets`: {mismatch + errors} differ"
