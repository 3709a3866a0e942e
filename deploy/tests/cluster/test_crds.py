"""Every custom resource the project ships (the chart in each profile and each Ansible environment,
the logging chart, the YAML under deploy/) is created on the real API server after the upstream
CRDs (scripts/crds.sh: each project's own release at the version deploy/versions.yaml pins), so
their structural schemas and CEL rules judge it, with Strict field validation."""
import copy
import json
import re

import pytest

from conftest import apply_crds
from shipped import CRDS, api_objects, custom_objects, group, upstream_crds

CUSTOM = custom_objects()


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:55]


@pytest.fixture(scope="module")
def crds(cluster):
    """The upstream CRD of every custom kind shipped, applied server-side in one request and
    Established (only those: each CRD costs the API server about a second of OpenAPI work);
    one namespace per source. Returns the (group, kind)s applied."""
    upstream = upstream_crds()
    wanted = sorted({(group(d), d["kind"]) for _, d in CUSTOM})
    missing = [gk for gk in wanted if gk not in upstream]
    assert not missing, f"no upstream CRD in {CRDS} for {missing}"
    apply_crds(cluster, [upstream[gk] for gk in wanted])
    for src in sorted({src for src, _ in CUSTOM}):
        cluster.kubectl("create", "namespace", f"cr-{slug(src)}")
    return set(wanted)


def create(cluster, src, doc, check=True):
    """`kubectl create` (a real POST with fieldValidation=Strict: an unknown field is an error, not
    a warning) in the source's namespace; a cluster-scoped object is deleted again at once."""
    doc = copy.deepcopy(doc)
    doc["metadata"].pop("namespace", None)
    out = cluster.kubectl("create", "--validate=strict", "-n", f"cr-{slug(src)}", "-o", "json",
                          "-f", "-", input=json.dumps(doc), check=False)
    if out.returncode == 0:
        created = json.loads(out.stdout)
        if "namespace" not in created["metadata"]:
            cluster.kubectl("delete", doc["kind"], doc["metadata"]["name"], "--wait=true")
    elif check:
        pytest.fail(f"the API server rejected {doc['kind']}/{doc['metadata']['name']} from {src}:\n"
                    f"{out.stderr.strip()}")
    return out


def test_every_custom_kind_the_project_ships_is_covered():
    """Every custom kind the chart and deploy/ are known to ship comes from some source here:
    a renamed file or a profile that stopped rendering one would otherwise drop it silently."""
    kinds = {d["kind"] for _, d in CUSTOM}
    assert kinds >= {"ServiceMonitor", "PrometheusRule", "Rollout", "AnalysisTemplate",
                     "TraefikService", "IngressRoute", "ScaledObject", "Certificate", "Issuer",
                     "ClusterIssuer", "HTTPRoute", "NodePool", "EC2NodeClass", "Elasticsearch",
                     "Kibana", "Installation", "APIServer"}, kinds


def test_every_shipped_kind_is_served(cluster, crds):
    """Every API object shipped is a kind the API server serves once the upstream CRDs are in:
    a custom resource without its CRD here would otherwise go unchecked."""
    served = set()
    for line in cluster.kubectl("api-resources", "--no-headers").stdout.splitlines():
        cols = line.split()     # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        served.add((cols[-3].rpartition("/")[0], cols[-1]))
    versions = set(cluster.kubectl("api-versions").stdout.split())
    missing = {(src, d["apiVersion"], d["kind"]) for src, d in api_objects()
               if (group(d), d["kind"]) not in served or d["apiVersion"] not in versions}
    assert not missing, missing


@pytest.mark.parametrize("src,doc", CUSTOM,
                         ids=[f"{src}:{d['kind']}/{d['metadata']['name']}" for src, d in CUSTOM])
def test_custom_resource_is_accepted(cluster, crds, src, doc):
    """The API server creates it: its CRD's structural schema, enums and CEL rules accept it."""
    create(cluster, src, doc)


def one(src, kind, name=None):
    (doc,) = [d for s, d in CUSTOM if s == src and d["kind"] == kind
              and name in (None, d["metadata"]["name"])]
    return copy.deepcopy(doc)


def misspelled_step(rollout):
    rollout["spec"]["strategy"]["canary"]["steps"][0] = {"setWeigth": 10}
    return rollout, ('unknown field "spec.strategy.canary.steps[0].setWeigth"',)


def bad_algorithm(cert):
    cert["spec"]["privateKey"]["algorithm"] = "DSA"
    return cert, ("spec.privateKey.algorithm", 'Unsupported value: "DSA"')


def restricted_label(pool):
    # karpenter-provider-aws's CEL rule: no unknown karpenter.k8s.aws/ labels
    pool["spec"]["template"]["spec"]["requirements"][0]["key"] = "karpenter.k8s.aws/instance-colour"
    return pool, ('label domain "karpenter.k8s.aws" is restricted',)


def misspelled_weight(service):
    # the entry Argo Rollouts rewrites: Traefik's CRD knows `weight`, nothing else
    entry = service["spec"]["weighted"]["services"][1]
    entry["weigth"] = entry.pop("weight")
    return service, ('unknown field "spec.weighted.services[1].weigth"',)


BROKEN = {
    "unknown-field": (lambda: one("chart-full", "Rollout", "fs-backend-api"), misspelled_step),
    "enum": (lambda: one("chart-full", "Certificate"), bad_algorithm),
    "cel-rule": (lambda: one("autoscaling/nodepool.yaml", "NodePool", "ferrostack"), restricted_label),
    "traefik-unknown-field": (lambda: one("chart-full", "TraefikService", "fs-backend-api"), misspelled_weight),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_api_server_rejects_a_broken_copy(cluster, crds, case):
    """The check bites: a shipped object with a misspelled field, a value outside its enum, or a
    value a CEL rule forbids is refused, and the error names what is wrong."""
    load, breaks = BROKEN[case]
    doc, expect = breaks(load())
    doc["metadata"]["name"] += "-broken"
    out = create(cluster, "chart-full", doc, check=False)
    assert out.returncode != 0, f"{case}: the API server accepted {doc['kind']} ({out.stdout[:200]})"
    assert all(e in out.stderr for e in expect), out.stderr
