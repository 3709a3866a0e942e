"""The healthcheck's probe types beside HTTP in the chart: extraTargets take every scheme the
binary probes, and `healthcheck.pingGroupRange` gives both healthcheck pods (CronJob and serve
Deployment) the sysctl an unprivileged ping socket needs for icmp:// targets."""

import yaml

from conftest import find, helm, name, pod_spec, render, template_args

RANGE = "healthcheck.pingGroupRange=0 2147483647"
ICMP = ("healthcheck.extraTargets[0].name=gateway", "healthcheck.extraTargets[0].url=icmp://10.0.0.1")


def healthcheck_pods(docs):
    return [pod_spec(d) for d in docs
            if d["kind"] in ("CronJob", "Deployment") and d["metadata"]["name"] == name("healthcheck")]


def test_no_sysctl_unless_asked():
    pods = healthcheck_pods(render("default"))
    assert len(pods) == 2
    for spec in pods:
        assert "sysctls" not in spec["securityContext"], spec["securityContext"]


def test_ping_group_range_reaches_both_healthcheck_pods():
    pods = healthcheck_pods(render("default", RANGE, *ICMP))
    assert len(pods) == 2
    for spec in pods:
        assert spec["securityContext"]["sysctls"] == [
            {"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}]
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_extra_targets_take_every_probe_type():
    sets = [f"healthcheck.extraTargets[{i}].{k}={v}" for i, url in enumerate(
        ["tcp://db:5432", "tls://api:443", "dns://10.96.0.10/kubernetes.default.svc.cluster.local",
         "grpc://orders:50051/shop.Orders", "icmp://10.0.0.1"])
        for k, v in (("name", f"t{i}"), ("url", url))]
    docs = render("default", *sets)
    maps = [d for d in find(docs, "ConfigMap") if "targets.yaml" in d.get("data", {})]
    assert maps, "the targets ConfigMap"
    urls = [t["url"] for t in yaml.safe_load(maps[0]["data"]["targets.yaml"])["targets"]]
    assert "icmp://10.0.0.1" in urls and "tcp://db:5432" in urls, urls


def test_schema_rejects_a_bad_range_and_an_unknown_scheme():
    out = helm(*template_args("default", ("healthcheck.pingGroupRange=everyone",)), check=False)
    assert out.returncode != 0 and "pingGroupRange" in out.stderr, out.stderr
    bad = ("healthcheck.extraTargets[0].name=x", "healthcheck.extraTargets[0].url=ftp://x")
    out = helm(*template_args("default", bad), check=False)
    assert out.returncode != 0 and "url" in out.stderr, out.stderr
