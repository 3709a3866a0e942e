"""Karpenter v1 NodePool/EC2NodeClass shapes (the rules no offline schema tool checks, k8s.md
§2.2 and §5.15), and the headroom objects."""
import re

import pytest

from conftest import ROOT
from k8s import by_kind, load_docs, validate

AUTOSCALING = ROOT / "deploy" / "autoscaling"
FORBIDDEN_TAG_PREFIXES = ("kubernetes.io/cluster/", "karpenter.sh/nodepool", "karpenter.sh/nodeclaim",
                          "karpenter.k8s.aws/ec2nodeclass", "eks:eks-cluster-name")
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$|^Never$")


@pytest.fixture(scope="module")
def docs():
    out = []
    for name in ("nodepool.yaml", "ec2nodeclass.yaml", "headroom.yaml", "headroom-scaledobject.yaml"):
        out += load_docs(AUTOSCALING / name)
    return out


def test_core_objects_validate_and_crds_are_known(docs):
    crds = validate(docs)
    assert sorted({(d["apiVersion"], d["kind"]) for d in crds}) == [
        ("karpenter.k8s.aws/v1", "EC2NodeClass"), ("karpenter.sh/v1", "NodePool"), ("keda.sh/v1alpha1", "ScaledObject")]


def test_nodepools(docs):
    classes = {d["metadata"]["name"] for d in by_kind(docs, "EC2NodeClass")}
    pools = by_kind(docs, "NodePool")
    assert len(pools) >= 1
    for pool in pools:
        spec = pool["spec"]
        tmpl = spec["template"]["spec"]
        ref = tmpl["nodeClassRef"]
        assert ref["group"] == "karpenter.k8s.aws" and ref["kind"] == "EC2NodeClass" and ref["name"] in classes
        assert "expireAfter" not in spec["disruption"], "v1 moved expireAfter to the template"
        assert DURATION.match(tmpl["expireAfter"]) and DURATION.match(tmpl["terminationGracePeriod"]), \
            "expireAfter needs terminationGracePeriod so blocked drains end"
        for req in tmpl["requirements"]:
            assert req["operator"] in {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
            if req["operator"] in {"Gt", "Lt"}:
                assert len(req["values"]) == 1 and req["values"][0].isdigit()
        d = spec["disruption"]
        assert d["consolidationPolicy"] in {"WhenEmpty", "WhenEmptyOrUnderutilized"}
        assert DURATION.match(d["consolidateAfter"]), "consolidateAfter is required in v1"
        assert d["budgets"], "disruption budgets"
        for b in d["budgets"]:
            assert re.fullmatch(r"\d+%?", b["nodes"])
            assert ("schedule" in b) == ("duration" in b), "a budget schedule needs a duration"
            assert set(b.get("reasons", [])) <= {"Underutilized", "Empty", "Drifted"}
        assert any(b.get("schedule") and b["nodes"] == "0" for b in d["budgets"]), "peak-hours freeze"
        assert spec["limits"]["cpu"] and spec["limits"]["memory"]


def test_ec2nodeclass(docs):
    for nc in by_kind(docs, "EC2NodeClass"):
        spec = nc["spec"]
        assert ("role" in spec) != ("instanceProfile" in spec), "exactly one of role | instanceProfile"
        terms = spec["amiSelectorTerms"]
        assert terms, "amiSelectorTerms is required in v1"
        if any("alias" in t for t in terms):
            assert len(terms) == 1 and list(terms[0]) == ["alias"], "an alias must stand alone"
        assert spec["subnetSelectorTerms"] and spec["securityGroupSelectorTerms"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        for key in spec.get("tags", {}):
            assert not key.startswith(FORBIDDEN_TAG_PREFIXES), key
        for bdm in spec.get("blockDeviceMappings", []):
            assert bdm["ebs"]["encrypted"] is True


def test_headroom_is_preempted_by_everything(docs):
    (pc,) = by_kind(docs, "PriorityClass", "ferrostack-headroom")
    assert pc["value"] < 0 and pc["preemptionPolicy"] == "Never" and pc["globalDefault"] is False
    (dep,) = by_kind(docs, "Deployment", "ferrostack-headroom")
    spec = dep["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "ferrostack-headroom"
    (c,) = spec["containers"]
    assert c["resources"]["requests"] == c["resources"]["limits"]
    (so,) = by_kind(docs, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "cron" and isinstance(trigger["metadata"]["desiredReplicas"], str)
    # the chart's app PriorityClasses must outrank the placeholders
    chart_values = ROOT / "deploy" / "helm" / "ferrostack" / "values.yaml"
    if chart_values.is_file():
        import yaml
        pcs = yaml.safe_load(chart_values.read_text())["priorityClasses"]
        assert min(pcs["high"]["value"], pcs["low"]["value"]) > pc["value"]
