"""The live test changes only the clock of the rules: check that transformation itself."""
import subprocess

import yaml

from conftest import OBS
from live import alertmanager_test_config, format_duration, parse_duration, scale_expr, scale_rules


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5
    assert format_duration(10) == "10s" and format_duration(0.5) == "500ms"


def test_scale_expr_keeps_everything_but_the_clock():
    expr = 'sum(rate(x_total{a="[5m]"}[5m])) > 3 * sum(rate(x_total[1h] offset 5m))'
    # label values (string literals) are not touched
    assert scale_expr(expr, 30, 4) == 'sum(rate(x_total{a="[5m]"}[10s])) > 3 * sum(rate(x_total[120s] offset 10s))'
    assert scale_expr("rate(x[1m])", 30, 4) == "rate(x[4s])", "ranges keep enough samples"


def test_scaled_rules_are_valid_and_otherwise_identical(tmp_path):
    for path in sorted((OBS / "rules").glob("*.yaml")):
        real = yaml.safe_load(path.read_text())
        fast = scale_rules(real, 30)
        out = tmp_path / path.name
        out.write_text(yaml.safe_dump(fast))
        res = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        for g_real, g_fast in zip(real["groups"], fast["groups"]):
            for r_real, r_fast in zip(g_real["rules"], g_fast["rules"]):
                assert {k: v for k, v in r_real.items() if k not in ("expr", "for")} == \
                    {k: v for k, v in r_fast.items() if k not in ("expr", "for")}


def test_alertmanager_test_config_keeps_routing():
    real = yaml.safe_load((OBS / "alertmanager" / "alertmanager.yaml").read_text())
    cfg = alertmanager_test_config(real, "http://127.0.0.1:9")
    assert cfg["inhibit_rules"] == real["inhibit_rules"]
    assert [r["name"] for r in cfg["receivers"]] == [r["name"] for r in real["receivers"]]
    assert [r.get("matchers") for r in cfg["route"]["routes"]] == [r.get("matchers") for r in real["route"]["routes"]]
    assert all(list(r) == ["name", "webhook_configs"] for r in cfg["receivers"])
