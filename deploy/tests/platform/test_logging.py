"""Structural tests of deploy/logging: manifests render and validate, Elasticsearch runs single
node with security and TLS, users come from a Secret, Fluent Bit parses our JSON lines and
ships to the write alias that the ILM policy and the index template manage."""
import json
import re

import pytest
import yaml

from conftest import ROOT
from k8s import by_kind, env_of, kustomize, validate

LOGGING = ROOT / "deploy" / "logging"


@pytest.fixture(scope="module")
def docs():
    return kustomize(LOGGING)


@pytest.fixture(scope="module")
def fluent_bit():
    return yaml.safe_load((LOGGING / "fluent-bit-config.yaml").read_text())


@pytest.fixture(scope="module")
def ilm():
    return json.loads((LOGGING / "ilm-policy.json").read_text())


@pytest.fixture(scope="module")
def template():
    return json.loads((LOGGING / "index-template.json").read_text())


def test_manifests_validate_strictly(docs):
    crds = validate(docs)
    assert {d["kind"] for d in crds} == {"Certificate"}
    for cert in crds:
        spec = cert["spec"]
        assert spec["issuerRef"] == {"name": "ferrostack-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
        assert spec["secretName"] and spec["dnsNames"]
    assert all(d["metadata"].get("namespace") == "logging" for d in docs
               if d["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"})


def test_elasticsearch_single_node_secure(docs):
    (sts,) = by_kind(docs, "StatefulSet", "elasticsearch")
    assert sts["spec"]["replicas"] == 1
    (es,) = sts["spec"]["template"]["spec"]["containers"]
    env = env_of(es)
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "true"
    assert env["xpack.security.http.ssl.enabled"] == "true"
    assert env["xpack.security.transport.ssl.enabled"] == "true"
    # built-in user password from the Secret, as a file, never a literal
    assert "ELASTIC_PASSWORD" not in env
    pw_file = env["ELASTIC_PASSWORD_FILE"]
    mounts = {m["name"]: m["mountPath"] for m in es["volumeMounts"]}
    assert pw_file.startswith(mounts["credentials"] + "/")
    vols = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert vols["credentials"]["secret"]["secretName"] == "elasticsearch-credentials"
    assert vols["certs"]["secret"]["secretName"] == "elasticsearch-tls"
    for key in ("key", "certificate", "certificate_authorities"):
        assert env[f"xpack.security.http.ssl.{key}"].startswith("certs/")
    assert es["resources"]["limits"]["memory"] == es["resources"]["requests"]["memory"]


def test_kibana_uses_kibana_system_over_tls(docs):
    (dep,) = by_kind(docs, "Deployment", "kibana")
    (kb,) = dep["spec"]["template"]["spec"]["containers"]
    env = env_of(kb)
    assert env["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert env["ELASTICSEARCH_PASSWORD"] == {"secretKeyRef": {"name": "elasticsearch-credentials", "key": "kibana_system"}}
    assert all(h.startswith("https://") for h in json.loads(env["ELASTICSEARCH_HOSTS"]))
    assert env["SERVER_SSL_ENABLED"] == "true" and env["ELASTICSEARCH_SSL_VERIFICATIONMODE"] == "full"


def test_no_literal_secrets_anywhere(docs):
    text = yaml.safe_dump_all(docs)
    assert not re.search(r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9]{6,}", text.replace("${FLUENT_ES_PASSWORD}", ""))
    assert not by_kind(docs, "Secret"), "Secrets are created outside git (up.sh / Ansible)"


def test_setup_job_loads_the_files_it_is_generated_from(docs):
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("elasticsearch-setup")]
    assert json.loads(cm["data"]["ilm-policy.json"]) == json.loads((LOGGING / "ilm-policy.json").read_text())
    assert json.loads(cm["data"]["index-template.json"]) == json.loads((LOGGING / "index-template.json").read_text())
    script = cm["data"]["setup.sh"]
    for call in ("/_security/user/kibana_system/_password", "/_ilm/policy/ferrostack-logs",
                 "/_index_template/ferrostack-logs", "/_security/user/fluent-bit", "/ferrostack-logs-000001"):
        assert call in script, call
    (job,) = by_kind(docs, "Job", "elasticsearch-setup")
    vols = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert vols["config"]["configMap"]["name"] == cm["metadata"]["name"], "kustomize must rewrite the hashed name"


def test_ilm_policy(ilm):
    phases = ilm["policy"]["phases"]
    rollover = phases["hot"]["actions"]["rollover"]
    assert rollover.get("max_age") and rollover.get("max_primary_shard_size")
    assert phases["delete"]["actions"] == {"delete": {}}
    days = {name: int(p["min_age"].rstrip("d")) for name, p in phases.items() if p["min_age"].endswith("d")}
    assert days["warm"] < days["delete"]


def test_index_template_matches_shipper_and_policy(template, fluent_bit):
    (es_out,) = [o for o in fluent_bit["pipeline"]["outputs"] if o["name"] == "es"]
    alias = es_out["index"]
    settings = template["template"]["settings"]
    assert settings["index.lifecycle.name"] == "ferrostack-logs"          # the ILM policy setup.sh installs
    assert settings["index.lifecycle.rollover_alias"] == alias
    assert any(re.fullmatch(p.replace("*", ".*"), f"{alias}-000001") for p in template["index_patterns"])
    assert settings["index.number_of_replicas"] == 0, "single node: replicas would stay unassigned"
    props = template["template"]["mappings"]["properties"]
    # the JSON log line fields every ferrostack role writes (DESIGN.md)
    assert {k: props[k]["type"] for k in ("timestamp", "level", "message", "role", "request_id")} == {
        "timestamp": "date", "level": "keyword", "message": "text", "role": "keyword", "request_id": "keyword"}


def test_fluent_bit_pipeline(fluent_bit, docs):
    (tail,) = fluent_bit["pipeline"]["inputs"]
    assert tail["name"] == "tail" and tail["path"] == "/var/log/containers/*.log"
    assert "cri" in tail["multiline.parser"] and tail["db"].startswith("/var/fluent-bit/state/")
    assert tail["storage.type"] == "filesystem"
    (kube,) = fluent_bit["pipeline"]["filters"]
    assert kube["name"] == "kubernetes" and kube["merge_log"] is True
    (parser,) = [p for p in fluent_bit["parsers"] if p["name"] == kube["merge_parser"]]
    assert parser["format"] == "json" and parser["time_key"] == "timestamp"
    (es_out,) = fluent_bit["pipeline"]["outputs"]
    assert es_out["tls"] is True and es_out["tls.verify"] is True
    assert es_out["http_passwd"] == "${FLUENT_ES_PASSWORD}"
    assert es_out["host"] == "elasticsearch.logging.svc" and es_out["port"] == 9200
    (ds,) = by_kind(docs, "DaemonSet", "fluent-bit")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert env_of(c)["FLUENT_ES_PASSWORD"] == {"secretKeyRef": {"name": "elasticsearch-credentials", "key": "fluent-bit"}}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True
    assert es_out["tls.ca_file"].rsplit("/", 1)[0] in mounts
    assert c["args"][-1].startswith(next(p for p in mounts if p.endswith("/conf")))
    # Fluent Bit must not ship its own log lines back in (feedback loop)
    assert "fluent-bit" in tail["exclude_path"]


def test_fluent_bit_parser_reads_our_timestamp_format():
    """The time_format must parse what the runtime writes (RFC 3339 with millis and Z/offset)."""
    import datetime
    fmt = yaml.safe_load((LOGGING / "fluent-bit-config.yaml").read_text())["parsers"][0]["time_format"]
    py = fmt.replace("%L", "%f")
    for sample in ("2026-11-21T16:20:32.123456Z", "2026-11-21T16:20:32.123+00:00"):
        datetime.datetime.strptime(sample.replace("Z", "+0000"), py)
