"""Our values against the real upstream charts at the versions deploy/versions.yaml pins: each
chart (pulled into .tools/charts by `scripts/tools.sh charts`) is rendered with `helm template`
and our values; keys the chart does not know are errors (a chart without a values schema
ignores them silently); the rendered objects show what our values are for; and our custom
resources are checked against the CRD schemas these charts install (ECK, cert-manager,
Prometheus Operator, Karpenter).

Where the chart repositories cannot be reached (our machines), these tests skip with the
reason; REQUIRE_UPSTREAM_CHARTS=1 (GitHub CI, which has the network) makes that a failure."""
import pytest
import yaml

from charts import ChartArchive, check_custom_resource, crd_schemas, load_all, template, upstream_chart, versions
from conftest import ROOT
from k8s import by_kind

LOGGING = ROOT / "deploy" / "logging"
KPS_VALUES = [ROOT / "deploy" / "observability" / "kube-prometheus-stack" / "values.yaml",
              ROOT / "deploy" / "kind" / "values" / "kube-prometheus-stack-kind.yaml"]


def load(path):
    return yaml.safe_load(path.read_text())


def containers(doc):
    return doc["spec"]["template"]["spec"]["containers"]


# chart key -> the values files we install it with (deploy/kind/up.sh and the playbooks)
VALUES = {
    "traefik": [ROOT / "deploy" / "ansible" / "values" / "traefik" / "common.yaml",
                ROOT / "deploy" / "kind" / "values" / "traefik.yaml"],
    "kube_prometheus_stack": KPS_VALUES,
    "eck_operator": [LOGGING / "values" / "eck-operator.yaml"],
    "fluent_bit": [LOGGING / "values" / "fluent-bit.yaml"],
    "jenkins": [ROOT / "deploy" / "jenkins" / "values.yaml"],
}


@pytest.mark.parametrize("key", sorted(VALUES))
def test_values_keys_are_known_to_the_chart(key):
    chart = ChartArchive.open(upstream_chart(key))
    for path in VALUES[key]:
        unknown = chart.unknown_keys(load(path))
        if chart.has_schema:
            # helm template (below) validates against the chart's own schema instead; the
            # leftovers are keys that schema allows (per-port hostPort and the like)
            continue
        assert not unknown, f"{path.relative_to(ROOT)}: {unknown} are not values of {chart.name}"


TRAEFIK_ENVS = {"development": ROOT / "deploy" / "kind" / "values" / "traefik.yaml",
                "staging": ROOT / "deploy" / "ansible" / "values" / "traefik" / "staging.yaml",
                "production": ROOT / "deploy" / "ansible" / "values" / "traefik" / "production.yaml"}


@pytest.mark.parametrize("env", sorted(TRAEFIK_ENVS))
def test_traefik_renders_on_a_fresh_cluster_of_each_environment(env):
    """No monitoring.coreos.com/v1 yet (Traefik comes before kube-prometheus-stack): the chart
    renders, without a ServiceMonitor; outside kind nothing pins it to kind's ingress-ready node."""
    docs = template(upstream_chart("traefik"), "traefik", "ingress", [VALUES["traefik"][0], TRAEFIK_ENVS[env]],
                    api_versions=(), kube_version="1.35.0")
    assert not by_kind(docs, "ServiceMonitor")
    (dep,) = by_kind(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "ferrostack-platform"
    if env != "development":
        assert "ingress-ready" not in spec.get("nodeSelector", {})
        assert not [p for p in containers(dep)[0]["ports"] if p.get("hostPort")]
        (svc,) = by_kind(docs, "Service")
        assert svc["spec"]["type"] in {"NodePort", "LoadBalancer"}


def test_traefik_on_kind_uses_host_ports_and_no_load_balancer():
    docs = template(upstream_chart("traefik"), "traefik", "ingress", VALUES["traefik"], kube_version="1.35.0")
    (svc,) = by_kind(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP", "kind has no cloud load balancer (chart v40+: service.spec.type)"
    (dep,) = by_kind(docs, "Deployment")
    ports = {p["name"]: p.get("hostPort") for p in containers(dep)[0]["ports"]}
    assert ports["web"] == 80 and ports["websecure"] == 443
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"ingress-ready": "true"}
    (cls,) = by_kind(docs, "IngressClass")
    assert cls["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    # The ferrostack chart (default values, kind profile, Ansible's values) names this class,
    # and its NetworkPolicies let exactly these pods in, from this namespace.
    ferrostack = ROOT / "deploy" / "helm" / "ferrostack"
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    for values in ([], [ferrostack / "ci" / "kind-values.yaml"],
                   [ROOT / "deploy" / "ansible" / "values" / "ferrostack" / "common.yaml"]):
        ours = template(ferrostack, "fs", "dev", values)
        (ing,) = by_kind(ours, "Ingress")
        assert ing["spec"]["ingressClassName"] == cls["metadata"]["name"], values
        (policy,) = [d for d in by_kind(ours, "NetworkPolicy") if d["metadata"]["name"] == "fs-backend-api"]
        peer = policy["spec"]["ingress"][0]["from"][0]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress"}
        assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items(), values


def test_cert_manager_crds_accept_our_certificates_and_issuers():
    docs = template(upstream_chart("cert_manager"), "cert-manager", "cert-manager", sets={"crds.enabled": "true"})
    schemas = crd_schemas(docs)
    ours = load_all((ROOT / "deploy" / "kind" / "cluster-issuer.yaml").read_text())
    ours += template(LOGGING / "stack", "logging", "logging")
    ours += template(ROOT / "deploy" / "helm" / "ferrostack", "fs", "dev",
                     [ROOT / "deploy" / "helm" / "ferrostack" / "ci" / "full-values.yaml"])
    checked = [d for d in ours if d["apiVersion"].startswith("cert-manager.io/")]
    assert len(checked) >= 5
    for doc in checked:
        assert check_custom_resource(doc, schemas) == [], doc["metadata"]["name"]


def test_kube_prometheus_stack_with_our_values():
    docs = template(upstream_chart("kube_prometheus_stack"), "kube-prometheus-stack", "monitoring", KPS_VALUES,
                    include_crds=True)
    schemas = crd_schemas(docs)
    (prom,) = by_kind(docs, "Prometheus")
    spec = prom["spec"]
    for sel in ("serviceMonitorSelector", "podMonitorSelector", "ruleSelector", "ruleNamespaceSelector"):
        assert spec[sel] == {}, f"{sel}: every release's monitors and rules are selected"
    assert "storage" not in spec and spec["retention"] == "2d", "the kind overlay drops the volume"
    (am,) = by_kind(docs, "Alertmanager")
    assert am["spec"]["configSecret"] == "alertmanager-ferrostack" and am["spec"]["secrets"] == ["alertmanager-receivers"]
    for doc in (prom, am):
        assert check_custom_resource(doc, schemas) == []
    monitors = {d["metadata"]["name"] for d in by_kind(docs, "ServiceMonitor")}
    for component in ("kube-controller-manager", "kube-scheduler", "kube-etcd", "kube-proxy"):
        assert f"kube-prometheus-stack-{component}" in monitors, component
    # the ferrostack chart's ServiceMonitors and PrometheusRule fit this Prometheus Operator
    ours = template(ROOT / "deploy" / "helm" / "ferrostack", "fs", "dev",
                    [ROOT / "deploy" / "helm" / "ferrostack" / "ci" / "full-values.yaml"])
    checked = [d for d in ours if d["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {d["kind"] for d in checked} == {"ServiceMonitor", "PrometheusRule"}
    for doc in checked:
        assert check_custom_resource(doc, schemas) == [], doc["metadata"]["name"]


def test_webhook_certgen_image_is_the_one_kube_prometheus_stack_runs():
    """The ferrostack chart's self-signed hook Jobs use the kube-webhook-certgen image and tag
    of the pinned kube-prometheus-stack (the maintained fork; ingress-nginx's is retired)."""
    image = ChartArchive.open(upstream_chart("kube_prometheus_stack")).defaults[
        "prometheusOperator"]["admissionWebhooks"]["patch"]["image"]
    ours = load(ROOT / "deploy" / "helm" / "ferrostack" / "values.yaml")["webhook"]["tls"]["certgen"]["image"]
    assert ours["repository"] == f'{image["registry"]}/{image["repository"]}'
    assert ours["tag"] == image["tag"]


def test_pushgateway_and_metrics_server_render():
    docs = template(upstream_chart("prometheus_pushgateway"), "prometheus-pushgateway", "monitoring")
    assert by_kind(docs, "Deployment") and by_kind(docs, "Service", "prometheus-pushgateway")
    # what the playbook and up.sh set for kind: --kubelet-insecure-tls
    docs = template(upstream_chart("metrics_server"), "metrics-server", "kube-system",
                    sets={"args": "{--kubelet-insecure-tls}"})
    (dep,) = by_kind(docs, "Deployment")
    assert "--kubelet-insecure-tls" in containers(dep)[0]["args"]


def test_eck_operator_watches_only_the_logging_namespace():
    docs = template(upstream_chart("eck_operator"), "elastic-operator", "elastic-system", VALUES["eck_operator"],
                    include_crds=True)
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if "eck.yaml" in d.get("data", {})]
    cfg = yaml.safe_load(cm["data"]["eck.yaml"])
    assert cfg["namespaces"] == ["logging"] and cfg["disable-telemetry"] is True
    assert cfg["metrics-secure"] is True and cfg["metrics-port"] == 8443
    (sts,) = by_kind(docs, "StatefulSet")
    image = containers(sts)[0]["image"]
    assert image.endswith(":" + versions()["eck_operator_chart"]), image
    assert by_kind(docs, "ServiceMonitor") and by_kind(docs, "ValidatingWebhookConfiguration")
    assert {("elasticsearch.k8s.elastic.co/v1", "Elasticsearch"), ("kibana.k8s.elastic.co/v1", "Kibana")} <= set(
        crd_schemas(docs))


@pytest.mark.parametrize("issuer", ["ferrostack-ca", ""])
def test_logging_resources_fit_the_eck_crds(issuer):
    schemas = crd_schemas(template(upstream_chart("eck_operator"), "elastic-operator", "elastic-system",
                                   VALUES["eck_operator"], include_crds=True))
    docs = template(LOGGING / "stack", "logging", "logging", sets={"tls.clusterIssuer": issuer})
    crs = [d for d in docs if d["apiVersion"].split("/")[0].endswith(".k8s.elastic.co")]
    assert {d["kind"] for d in crs} == {"Elasticsearch", "Kibana"}
    for doc in crs:
        assert check_custom_resource(doc, schemas) == [], doc["kind"]


def test_fluent_bit_chart_runs_our_pipeline():
    values = load(VALUES["fluent_bit"][0])
    docs = template(upstream_chart("fluent_bit"), "fluent-bit", "logging", VALUES["fluent_bit"])
    (ds,) = by_kind(docs, "DaemonSet")
    (c,) = containers(ds)
    (cm,) = by_kind(docs, "ConfigMap", "fluent-bit")
    # the YAML pipeline is the file Fluent Bit is started with; the classic file is left empty
    conf = cm["data"]["fluent-bit.yaml"]
    assert yaml.safe_load(conf) == yaml.safe_load(values["config"]["extraFiles"]["fluent-bit.yaml"])
    assert not cm["data"]["fluent-bit.conf"].strip() and not cm["data"]["custom_parsers.conf"].strip()
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "config")
    assert f"--config={mount}/fluent-bit.yaml" in c["args"]
    # the image is the one the pinned chart was released with (no second pin to drift)
    assert c["image"] == "cr.fluentbit.io/fluent/fluent-bit:" + ChartArchive.open(upstream_chart("fluent_bit")).app_version
    env = {e["name"]: e.get("valueFrom") for e in c["env"]}
    assert env["FLUENT_ES_PASSWORD"] == {"secretKeyRef": {"name": "elasticsearch-fluent-bit-user", "key": "password"}}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True and "/var/fluent-bit/state" in mounts
    pipeline = yaml.safe_load(conf)
    (out,) = pipeline["pipeline"]["outputs"]
    assert out["tls.ca_file"].rsplit("/", 1)[0] in mounts
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert volumes["es-ca"]["secret"]["secretName"] == "elasticsearch-es-http-certs-public"
    assert not by_kind(docs, "Pod"), "no helm test pod pulling busybox:latest"
    assert by_kind(docs, "ServiceMonitor")


def test_jenkins_controller_on_the_ci_node_with_existing_admin_secret():
    # playbooks/jenkins.yml adds the environment's StorageClass (group_vars jenkins_storage_class)
    docs = template(upstream_chart("jenkins"), "jenkins", "jenkins", VALUES["jenkins"],
                    sets={"persistence.storageClass": "local-path"})
    (sts,) = by_kind(docs, "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"ferrostack.dev/ci": "jenkins"}
    assert {"key": "ferrostack.dev/ci", "operator": "Equal", "value": "jenkins", "effect": "NoSchedule"} in spec[
        "tolerations"]
    # the JCasC admin user reads ${chart-admin-username}/${chart-admin-password}: our Secret must
    # be mounted there, and the chart must not generate one with a random password
    sources = next(v for v in spec["volumes"] if v["name"] == "jenkins-secrets")["projected"]["sources"]
    admin = [s["secret"] for s in sources if s.get("secret", {}).get("name") == "jenkins-admin"]
    assert admin and {i["path"] for i in admin[0]["items"]} == {"chart-admin-username", "chart-admin-password"}
    assert not [d for d in by_kind(docs, "Secret") if "jenkins-admin-password" in d.get("data", {})]
    (pvc,) = by_kind(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "local-path"


def test_karpenter_crds_accept_our_node_pools():
    docs = template(upstream_chart("karpenter"), "karpenter", "kube-system", include_crds=True,
                    sets={"settings.clusterName": "ferrostack"})
    schemas = crd_schemas(docs)
    ours = []
    for name in ("nodepool.yaml", "ec2nodeclass.yaml"):
        ours += load_all((ROOT / "deploy" / "autoscaling" / name).read_text())
    assert {d["kind"] for d in ours} == {"NodePool", "EC2NodeClass"}
    for doc in ours:
        assert check_custom_resource(doc, schemas) == [], doc["metadata"]["name"]
