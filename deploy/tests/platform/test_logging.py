"""Structural tests of deploy/logging: the local chart deploy/logging/stack (Elasticsearch and
Kibana as ECK resources, the index setup hook) renders, lints and validates; Elasticsearch runs
single node with security and TLS; its users come from basic-auth Secrets; the Fluent Bit values
parse our JSON lines and ship to the write alias that the ILM policy and the index template
manage. test_upstream_charts.py renders the ECK operator and Fluent Bit charts themselves."""
import json
import re
import subprocess

import pytest
import yaml

from charts import helm, template
from conftest import ROOT
from k8s import by_kind, env_of, validate

LOGGING = ROOT / "deploy" / "logging"
STACK = LOGGING / "stack"
FILES = STACK / "files"


@pytest.fixture(scope="module")
def docs():
    return template(STACK, "logging", "logging")


@pytest.fixture(scope="module")
def fluent_bit_values():
    return yaml.safe_load((LOGGING / "values" / "fluent-bit.yaml").read_text())


@pytest.fixture(scope="module")
def fluent_bit(fluent_bit_values):
    return yaml.safe_load(fluent_bit_values["config"]["extraFiles"]["fluent-bit.yaml"])


@pytest.fixture(scope="module")
def ilm():
    return json.loads((FILES / "ilm-policy.json").read_text())


@pytest.fixture(scope="module")
def index_template():
    return json.loads((FILES / "index-template.json").read_text())


def test_chart_lints_and_rejects_unknown_values():
    res = subprocess.run([helm(), "lint", "--strict", str(STACK)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([helm(), "template", "x", str(STACK), "--set", "elasticsearch.replicas=3"],
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "replicas" in res.stderr, "values.schema.json must reject unknown keys"


@pytest.mark.parametrize("issuer", ["ferrostack-ca", ""])
@pytest.mark.parametrize("overlay", [[], [LOGGING / "values" / "stack-kind.yaml"]], ids=["default", "kind"])
def test_manifests_validate_strictly(issuer, overlay):
    docs = template(STACK, "logging", "logging", overlay, sets={"tls.clusterIssuer": issuer})
    crds = validate(docs)
    kinds = sorted(d["kind"] for d in crds)
    assert kinds == (["Certificate", "Certificate", "Elasticsearch", "Kibana"] if issuer else ["Elasticsearch", "Kibana"])
    assert all(d["metadata"]["namespace"] == "logging" for d in docs)
    (es,) = by_kind(docs, "Elasticsearch")
    tls = es["spec"]["http"]["tls"]
    if issuer:
        certs = {c["spec"]["secretName"]: c["spec"] for c in by_kind(docs, "Certificate")}
        assert tls == {"certificate": {"secretName": "elasticsearch-http-tls"}}
        spec = certs["elasticsearch-http-tls"]
        assert spec["issuerRef"] == {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}
        # the name Fluent Bit and the setup Job connect to is in the certificate
        assert "elasticsearch-es-http.logging.svc" in spec["dnsNames"]
        (kb,) = by_kind(docs, "Kibana")
        assert kb["spec"]["http"]["tls"] == {"certificate": {"secretName": "kibana-http-tls"}}
        assert "kibana-kb-http.logging.svc" in certs["kibana-http-tls"]["dnsNames"]
    else:
        assert "selfSignedCertificate" in tls and "disabled" not in json.dumps(tls)


def test_elasticsearch_single_node_secure_users_from_secrets(docs):
    (es,) = by_kind(docs, "Elasticsearch")
    spec = es["spec"]
    (node_set,) = spec["nodeSets"]
    assert node_set["count"] == 1, "single node (case study 001 step 2.4)"
    assert set(node_set["config"]["node.roles"]) == {"master", "data", "ingest"}
    assert node_set["config"]["node.store.allow_mmap"] is False, "no vm.max_map_count / privileged init container"
    # ECK: security and transport TLS cannot be turned off; HTTPS must not be either
    assert "xpack.security.enabled" not in node_set["config"]
    assert "selfSignedCertificate" not in spec["http"]["tls"] or \
        not spec["http"]["tls"]["selfSignedCertificate"].get("disabled")
    (c,) = node_set["podTemplate"]["spec"]["containers"]
    assert c["name"] == "elasticsearch"
    assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
    (claim,) = node_set["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "elasticsearch-data", "the name ECK mounts as the data path"
    # built-in and shipper users from basic-auth Secrets created outside git, roles from a Secret
    assert [r["secretName"] for r in spec["auth"]["fileRealm"]] == [
        "elasticsearch-elastic-user", "elasticsearch-fluent-bit-user"]
    (roles_ref,) = spec["auth"]["roles"]
    (roles,) = by_kind(docs, "Secret", roles_ref["secretName"])
    role = yaml.safe_load(roles["stringData"]["roles.yml"])["ferrostack-logs-writer"]
    (indices,) = role["indices"]
    assert set(indices["privileges"]) == {"create_doc", "create_index", "view_index_metadata", "auto_configure"}
    assert "delete_index" not in indices["privileges"] and role["cluster"] == ["monitor"]


def test_kibana_associated_over_tls(docs):
    (kb,) = by_kind(docs, "Kibana")
    (es,) = by_kind(docs, "Elasticsearch")
    assert kb["spec"]["elasticsearchRef"] == {"name": es["metadata"]["name"]}
    assert kb["spec"]["version"] == es["spec"]["version"]
    assert kb["spec"]["config"]["server.publicBaseUrl"].startswith("https://")


def test_no_literal_secrets_anywhere(docs, fluent_bit_values):
    text = yaml.safe_dump_all(docs) + yaml.safe_dump(fluent_bit_values)
    assert not re.search(r"(?i)passw(or)?d\s*[:=]\s*['\"]?[A-Za-z0-9]{6,}", text.replace("${FLUENT_ES_PASSWORD}", ""))
    assert [d["metadata"]["name"] for d in by_kind(docs, "Secret")] == ["elasticsearch-roles"], \
        "user Secrets are created outside git (up.sh / Ansible)"


def test_setup_hook_loads_the_files_it_is_generated_from(docs):
    (cm,) = by_kind(docs, "ConfigMap", "logging-setup")
    for name in ("ilm-policy.json", "index-template.json"):
        assert json.loads(cm["data"][name]) == json.loads((FILES / name).read_text())
    assert cm["data"]["setup.sh"] == (FILES / "setup.sh").read_text()
    (job,) = by_kind(docs, "Job", "logging-setup")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    (es,) = by_kind(docs, "Elasticsearch")
    assert c["image"] == f"docker.elastic.co/elasticsearch/elasticsearch:{es['spec']['version']}"
    env = env_of(c)
    assert env["ES_URL"] == "https://elasticsearch-es-http.logging.svc:9200"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert vols["certs"]["secret"]["secretName"] == "elasticsearch-es-http-certs-public"
    assert vols["credentials"]["secret"]["secretName"] == "elasticsearch-elastic-user"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True


def test_ilm_policy(ilm):
    phases = ilm["policy"]["phases"]
    rollover = phases["hot"]["actions"]["rollover"]
    assert rollover.get("max_age") and rollover.get("max_primary_shard_size")
    assert phases["delete"]["actions"] == {"delete": {}}
    days = {name: int(p["min_age"].rstrip("d")) for name, p in phases.items() if p["min_age"].endswith("d")}
    assert days["warm"] < days["delete"]


def test_index_template_matches_shipper_and_policy(index_template, fluent_bit, docs):
    (es_out,) = [o for o in fluent_bit["pipeline"]["outputs"] if o["name"] == "es"]
    alias = es_out["index"]
    (job,) = by_kind(docs, "Job", "logging-setup")
    assert env_of(job["spec"]["template"]["spec"]["containers"][0])["ALIAS"] == alias
    settings = index_template["template"]["settings"]
    assert settings["index.lifecycle.name"] == alias           # the ILM policy setup.sh installs as $ALIAS
    assert settings["index.lifecycle.rollover_alias"] == alias
    assert any(re.fullmatch(p.replace("*", ".*"), f"{alias}-000001") for p in index_template["index_patterns"])
    assert settings["index.number_of_replicas"] == 0, "single node: replicas would stay unassigned"
    props = index_template["template"]["mappings"]["properties"]
    # the JSON log line fields every ferrostack role writes (DESIGN.md)
    assert {k: props[k]["type"] for k in ("timestamp", "level", "message", "role", "request_id")} == {
        "timestamp": "date", "level": "keyword", "message": "text", "role": "keyword", "request_id": "keyword"}
    # and the role the shipper writes with covers the alias and its indices
    (roles,) = by_kind(docs, "Secret", "elasticsearch-roles")
    names = yaml.safe_load(roles["stringData"]["roles.yml"])["ferrostack-logs-writer"]["indices"][0]["names"]
    assert alias in names and f"{alias}-*" in names


def test_fluent_bit_pipeline(fluent_bit, fluent_bit_values):
    (tail,) = fluent_bit["pipeline"]["inputs"]
    assert tail["name"] == "tail" and tail["path"] == "/var/log/containers/*.log"
    assert "cri" in tail["multiline.parser"] and tail["db"].startswith("/var/fluent-bit/state/")
    assert tail["storage.type"] == "filesystem"
    # Fluent Bit must not ship its own log lines back in (feedback loop): release fluent-bit, ns logging
    assert re.fullmatch(tail["exclude_path"].replace("*", ".*"),
                        "/var/log/containers/fluent-bit-x7k2p_logging_fluent-bit-0123abcd.log")
    (kube,) = fluent_bit["pipeline"]["filters"]
    assert kube["name"] == "kubernetes" and kube["merge_log"] is True
    (parser,) = [p for p in fluent_bit["parsers"] if p["name"] == kube["merge_parser"]]
    assert parser["format"] == "json" and parser["time_key"] == "timestamp"
    (es_out,) = fluent_bit["pipeline"]["outputs"]
    assert es_out["tls"] is True and es_out["tls.verify"] is True
    assert es_out["http_user"] == "fluent-bit" and es_out["http_passwd"] == "${FLUENT_ES_PASSWORD}"
    assert es_out["host"] == "elasticsearch-es-http.logging.svc" and es_out["port"] == 9200
    env = {e["name"]: e["valueFrom"] for e in fluent_bit_values["env"]}
    assert env["FLUENT_ES_PASSWORD"] == {"secretKeyRef": {"name": "elasticsearch-fluent-bit-user", "key": "password"}}
    assert fluent_bit["service"]["storage.path"].startswith("/var/fluent-bit/state/")
    assert "--config=/fluent-bit/etc/conf/fluent-bit.yaml" in fluent_bit_values["args"]
    # the chart's tpl must leave the pipeline alone: no template markers in it
    assert "{{" not in fluent_bit_values["config"]["extraFiles"]["fluent-bit.yaml"]


def test_fluent_bit_parser_reads_our_timestamp_format(fluent_bit):
    """The time_format must parse what the runtime writes (RFC 3339 with fraction and Z)."""
    import datetime
    (parser,) = fluent_bit["parsers"]
    py = parser["time_format"].replace("%L", "%f")
    for sample in ("2026-11-21T16:20:32.123456Z", "2026-11-21T16:20:32.123+00:00"):
        datetime.datetime.strptime(sample.replace("Z", "+0000"), py)


def test_namespace_allows_fluent_bits_host_path():
    (ns,) = yaml.safe_load_all((LOGGING / "namespace.yaml").read_text())
    assert ns["metadata"]["name"] == "logging"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_versions_and_chart_defaults_agree():
    from charts import versions
    values = yaml.safe_load((STACK / "values.yaml").read_text())
    chart = yaml.safe_load((STACK / "Chart.yaml").read_text())
    assert values["version"] == chart["appVersion"] == versions()["elastic_stack"]
