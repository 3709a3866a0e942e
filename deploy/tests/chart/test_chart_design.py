"""The chart's own design decisions (issue 6), checked on the rendered objects: roles and
flags, priorities, shutdown timing, secrets as files, the logship sidecar, the healthcheck,
the webhook and its certificates, the toggles, and values.schema.json refusing bad values."""

import pytest
import yaml

from conftest import NAMESPACE, PROFILES as PROFILE_FILES, containers, find, helm, name, one, pod_spec, render, template_args

DEFAULT = render("default")
FULL = render("full")
KIND = render("kind")


def container(obj, cname):
    return next(c for c in containers(pod_spec(obj)) if c["name"] == cname)


def env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


@pytest.mark.parametrize("role,port", [("backend-api", 8080), ("data-api", 8081)])
def test_api_roles(role, port):
    dep = one(DEFAULT, "Deployment", name(role))
    c = container(dep, role)
    assert c["args"] == [role], "one image, the role as the first argument"
    e = env(c)
    assert e["FERROSTACK_PORT"] == str(port)
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert e["FERROSTACK_LOG_DIR"] == "/var/lib/ferrostack/logs/generated"
    assert all(k.startswith("FERROSTACK_") for k in e)


def test_every_container_runs_the_one_image_with_a_role():
    roles = {"backend-api", "data-api", "logship", "healthcheck", "webhook"}
    for d in FULL:
        if pod_spec(d) is None:
            continue
        for c in containers(pod_spec(d)):
            if "kube-webhook-certgen" in c["image"]:
                continue
            assert c["image"].startswith("ghcr.io/ferrostack/ferrostack:0.1.0@sha256:")
            assert c["args"][0] in roles, c["args"]


def test_priorities_app_x_over_app_y():
    pcs = {p["metadata"]["name"]: p for p in find(DEFAULT, "PriorityClass")}
    x = pod_spec(one(DEFAULT, "Deployment", name("backend-api")))["priorityClassName"]
    y = pod_spec(one(DEFAULT, "Deployment", name("data-api")))["priorityClassName"]
    assert pcs[x]["value"] > pcs[y]["value"]
    assert pcs[y]["preemptionPolicy"] == "Never"
    assert not any(p["globalDefault"] for p in pcs.values())
    assert not find(render("default", "priorityClasses.create=false"), "PriorityClass")


def test_node_affinity_for_app_x_is_optional():
    assert "nodeAffinity" not in pod_spec(one(DEFAULT, "Deployment", name("backend-api")))["affinity"]
    na = pod_spec(one(FULL, "Deployment", name("backend-api")))["affinity"]["nodeAffinity"]
    term = na["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["preference"]["matchExpressions"][0]["values"] == ["m6i.2xlarge", "m7i.2xlarge"]
    assert "nodeAffinity" not in pod_spec(one(FULL, "Deployment", name("data-api")))["affinity"]
    req = render("full", "backendApi.nodeAffinity.required=true")
    na = pod_spec(one(req, "Deployment", name("backend-api")))["affinity"]["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in na


@pytest.mark.parametrize("component", ["backend-api", "data-api", "healthcheck", "webhook"])
def test_shutdown_timing_matches_the_drain(component):
    dep = one(FULL, "Deployment", name(component))
    spec = pod_spec(dep)
    c = container(dep, component)
    e = env(c)
    pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(e["FERROSTACK_DRAIN_DELAY"].rstrip("s"))
    shutdown = int(e["FERROSTACK_SHUTDOWN_TIMEOUT"].rstrip("s"))
    assert (pre, drain, shutdown) == (5, 5, 20)
    assert spec["terminationGracePeriodSeconds"] == pre + drain + shutdown + 5
    custom = render("full", "shutdown.drainDelaySeconds=15", "shutdown.preStopSleepSeconds=10")
    spec = pod_spec(one(custom, "Deployment", name(component)))
    assert spec["terminationGracePeriodSeconds"] == 10 + 15 + 20 + 5


def test_probes_differ_and_startup_covers_boot():
    c = container(one(DEFAULT, "Deployment", name("backend-api")), "backend-api")
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 60
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "tcpSocket" not in c["livenessProbe"], "the case study's TCP-only liveness probe"


def test_integration_keys_are_files():
    dep = one(DEFAULT, "Deployment", name("backend-api"))
    c = container(dep, "backend-api")
    assert env(c)["FERROSTACK_INTEGRATION_KEYS_DIR"] == "/etc/ferrostack/integration-keys"
    mount = next(m for m in c["volumeMounts"] if m["name"] == "integration-keys")
    assert mount["readOnly"] is True and mount["mountPath"] == "/etc/ferrostack/integration-keys"
    vol = next(v for v in pod_spec(dep)["volumes"] if v["name"] == "integration-keys")
    assert vol["secret"] == {"secretName": "fs-integration-keys", "defaultMode": 0o440,
                             "optional": True}
    assert not find(DEFAULT, "Secret"), "no secret values in the default values"
    # existingSecret: mounted by name, nothing created
    vol = next(v for v in pod_spec(one(FULL, "Deployment", name("backend-api")))["volumes"]
               if v["name"] == "integration-keys")
    assert vol["secret"]["secretName"] == "ferrostack-integration-keys"
    assert not find(FULL, "Secret")
    # keys given at install time become a Secret, still mounted as files
    docs = render("default", "integrationKeys.keys.staging=s3cr3t")
    sec = one(docs, "Secret", "fs-integration-keys")
    assert sec["data"] == {"staging": "czNjcjN0"}
    assert "s3cr3t" not in str([d for d in docs if d["kind"] != "Secret"])
    assert "integration" not in str(pod_spec(one(DEFAULT, "Deployment", name("data-api"))))


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_logship_sidecar(role):
    dep = one(FULL, "Deployment", name(role))
    spec = pod_spec(dep)
    side = next(c for c in spec["initContainers"] if c["name"] == "logship")
    app = container(dep, role)
    assert side["restartPolicy"] == "Always", "native sidecar: stops after the service"
    assert side["args"] == ["logship", "--source=/var/lib/ferrostack/logs/generated"]
    shared = {m["name"]: m["mountPath"] for m in side["volumeMounts"]}
    assert shared["logs"] == {m["name"]: m["mountPath"] for m in app["volumeMounts"]}["logs"]
    logs = next(v for v in spec["volumes"] if v["name"] == "logs")
    assert logs["emptyDir"]["sizeLimit"]
    e = env(side)
    assert e["FERROSTACK_TO"] == "s3://ferrostack-logs/dev"
    assert e["FERROSTACK_S3_ENDPOINT"] == "https://minio.storage.svc:9000"
    # The shipper reads the mounted Secret itself (object_store reads no credentials file).
    mount = next(m for m in side["volumeMounts"] if m["name"] == "object-storage")
    assert mount["readOnly"] is True
    assert e["FERROSTACK_S3_CREDENTIALS_FILE"] == mount["mountPath"] + "/credentials"
    assert "AWS_SHARED_CREDENTIALS_FILE" not in e
    creds = next(v for v in spec["volumes"] if v["name"] == "object-storage")
    assert creds["secret"]["secretName"] == "ferrostack-object-storage"
    no_sidecar = render("default", "logship.enabled=false")
    assert "initContainers" not in pod_spec(one(no_sidecar, "Deployment", name(role)))


def test_healthcheck_cronjob_and_status_page():
    cj = one(DEFAULT, "CronJob", name("healthcheck"))
    job_spec = pod_spec(cj)
    c = job_spec["containers"][0]
    assert c["args"] == ["healthcheck", "run"]
    e = env(c)
    # The targets file (health crate format: defaults + targets) probes both Services.
    config = e["FERROSTACK_CONFIG"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "targets")
    vol = next(v for v in job_spec["volumes"] if v["name"] == "targets")
    cm = one(DEFAULT, "ConfigMap", vol["configMap"]["name"])
    assert config == mount["mountPath"] + "/targets.yaml"
    targets = yaml.safe_load(cm["data"]["targets.yaml"])
    assert targets["targets"] == [
        {"name": "backend-api", "url": "http://fs-backend-api:8080/"},
        {"name": "data-api", "url": "http://fs-data-api:8081/"},
    ]
    assert targets["defaults"]["timeout"] == "10s", "GET / takes 3 s by design"
    envs = render("default", "healthcheck.externalLogsEnvs={staging}")
    cm = one(envs, "ConfigMap", vol["configMap"]["name"])
    assert {"name": "download-external-logs-staging",
            "url": "http://fs-backend-api:8080/download_external_logs?env=staging"} in \
        yaml.safe_load(cm["data"]["targets.yaml"])["targets"]
    serve_tpl = one(envs, "Deployment", name("healthcheck"))["spec"]["template"]["metadata"]
    assert serve_tpl["annotations"]["checksum/targets"] != one(DEFAULT, "Deployment", name(
        "healthcheck"))["spec"]["template"]["metadata"]["annotations"]["checksum/targets"]
    hist = next(v for v in job_spec["volumes"] if v["name"] == "history")
    pvc = one(DEFAULT, "PersistentVolumeClaim", hist["persistentVolumeClaim"]["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # Not waited for by `helm --wait` (WaitForFirstConsumer), never deleted with the release.
    assert pvc["metadata"]["annotations"]["helm.sh/hook"] == "pre-install"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    own = render("default", "healthcheck.cron.persistence.existingClaim=history")
    assert not find(own, "PersistentVolumeClaim")
    own_vol = next(v for v in pod_spec(one(own, "CronJob", name("healthcheck")))["volumes"]
                   if v["name"] == "history")
    assert own_vol["persistentVolumeClaim"]["claimName"] == "history"
    assert e["FERROSTACK_HISTORY"].startswith(
        next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "history"))
    assert cj["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    serve = one(DEFAULT, "Deployment", name("healthcheck"))
    assert container(serve, "healthcheck")["args"] == ["healthcheck", "serve"]
    ing = one(DEFAULT, "Ingress", "fs")
    assert any(p["backend"]["service"]["name"] == name("healthcheck")
               for r in ing["spec"]["rules"] for p in r["http"]["paths"])


def test_autoscaling_modes():
    base = "backendApi.autoscaling.mode"
    # The two APIs share defaults through a YAML anchor; overriding one leaves the other.
    one_keda = render("default", f"{base}=keda")
    assert find(one_keda, "HorizontalPodAutoscaler", name("data-api"))
    hpa = render("default", f"{base}=hpa")
    assert find(hpa, "HorizontalPodAutoscaler", name("backend-api"))
    assert "replicas" not in one(hpa, "Deployment", name("backend-api"))["spec"]
    keda = render("default", f"{base}=keda")
    assert find(keda, "ScaledObject", name("backend-api"))
    assert not find(keda, "HorizontalPodAutoscaler", name("backend-api"))
    none = render("default", f"{base}=none", "backendApi.replicas=3")
    assert one(none, "Deployment", name("backend-api"))["spec"]["replicas"] == 3
    assert not find(none, "HorizontalPodAutoscaler", name("backend-api"))


def test_canary_toggle():
    assert not find(DEFAULT, "Rollout")
    assert len(find(FULL, "Rollout")) == 2


def test_webhook_configurations():
    for docs, mode in ((FULL, "cert-manager"), (KIND, "self-signed")):
        svc = one(docs, "Service", name("webhook"))
        validating = one(docs, "ValidatingWebhookConfiguration", name("webhook"))["webhooks"]
        # Namespaces with the priority label go to their own path (a review carries no
        # namespace labels): exactly one of the two entries sees any namespace.
        plain, labelled = validating
        label = "ferrostack.io/priority-required"
        assert {"key": label, "operator": "DoesNotExist"} in plain["namespaceSelector"]["matchExpressions"]
        assert {"key": label, "operator": "Exists"} in labelled["namespaceSelector"]["matchExpressions"]
        assert labelled["clientConfig"]["service"]["path"] == "/validate/labelled-namespace"
        for kind, path, hook in (("ValidatingWebhookConfiguration", "/validate", plain),
                                 ("ValidatingWebhookConfiguration", "/validate/labelled-namespace", labelled),
                                 ("MutatingWebhookConfiguration", "/mutate", None)):
            if hook is None:
                (hook,) = one(docs, kind, name("webhook"))["webhooks"]
            assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
            assert 1 <= hook["timeoutSeconds"] <= 5
            ref = hook["clientConfig"]["service"]
            assert (ref["name"], ref["namespace"], ref["path"]) == (svc["metadata"]["name"], NAMESPACE, path)
            assert ref["port"] in {p["port"] for p in svc["spec"]["ports"]}
            excluded = next(e for e in hook["namespaceSelector"]["matchExpressions"]
                            if e["key"] == "kubernetes.io/metadata.name")
            assert excluded["operator"] == "NotIn"
            assert set(excluded["values"]) == {NAMESPACE, "kube-system"}
            assert "caBundle" not in hook["clientConfig"], "injected, never templated"
        v = one(docs, "ValidatingWebhookConfiguration", name("webhook"))["webhooks"][0]
        m = one(docs, "MutatingWebhookConfiguration", name("webhook"))["webhooks"][0]
        # Self-signed: created Ignore, so nothing is refused while caBundle is empty; the patch
        # hook sets Fail with the caBundle (test_self_signed_hooks). Earlier the chart created
        # it Fail, which refused every pod in the reviewed namespaces until the hook had run.
        want = "Fail" if mode == "cert-manager" else "Ignore"
        assert v["failurePolicy"] == want and m["failurePolicy"] == "Ignore"
    kind_hook = one(KIND, "ValidatingWebhookConfiguration", name("webhook"))["webhooks"][0]
    assert kind_hook["namespaceSelector"]["matchLabels"] == {"ferrostack.io/admission": "enforce"}
    c = container(one(FULL, "Deployment", name("webhook")), "webhook")
    assert c["args"] == ["webhook", "serve"]
    assert env(c)["FERROSTACK_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert not find(DEFAULT, "ValidatingWebhookConfiguration"), "opt-in"


def test_self_signed_hooks():
    jobs = {j["metadata"]["name"]: j for j in find(KIND, "Job")}
    create = jobs[name("webhook-certgen") + "-create"]
    patch = jobs[name("webhook-certgen") + "-patch"]
    assert create["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert patch["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    secret = f'--secret-name={name("webhook")}-tls'
    assert secret in pod_spec(create)["containers"][0]["args"]
    assert secret in pod_spec(patch)["containers"][0]["args"]
    assert f'--webhook-name={name("webhook")}' in pod_spec(patch)["containers"][0]["args"]
    # kube-webhook-certgen's --patch-failure-policy applies to every configuration it patches
    # (cmd/patch.go, pkg/k8s/k8s.go, read upstream): the mutating one is patched alone first,
    # caBundle only (it stays Ignore), then the validating one gets caBundle and Fail together.
    (mutating,) = pod_spec(patch)["initContainers"]
    assert {"--patch-validating=false", "--patch-mutating=true", secret} <= set(mutating["args"])
    assert not [a for a in mutating["args"] if a.startswith("--patch-failure-policy")]
    validating = pod_spec(patch)["containers"][0]["args"]
    assert {"--patch-validating=true", "--patch-mutating=false",
            "--patch-failure-policy=Fail"} <= set(validating)
    # The Secret keys the webhook Deployment reads (--tls-cert / --tls-key paths).
    assert {"--cert-name=tls.crt", "--key-name=tls.key"} <= set(pod_spec(create)["containers"][0]["args"])
    assert f'--host={name("webhook")},{name("webhook")}.dev,{name("webhook")}.dev.svc' in \
        pod_spec(create)["containers"][0]["args"]
    vol = next(v for v in pod_spec(one(KIND, "Deployment", name("webhook")))["volumes"]
               if v["name"] == "tls")
    assert vol["secret"]["secretName"] == f'{name("webhook")}-tls'
    cr = one(KIND, "ClusterRole", name("webhook-certgen") + "-dev")
    assert cr["rules"][0]["resourceNames"] == [name("webhook")]
    # kube-webhook-certgen's patch step always ends in a server-side Apply, a PATCH
    # (pkg/k8s/k8s.go, applyValidatingWebhook / applyMutatingWebhook, read upstream).
    assert {"get", "patch"} <= set(cr["rules"][0]["verbs"])
    # Helm deletes hook-succeeded hooks once their phase succeeded: no hook RBAC outlives it.
    for kind in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        for obj in find(KIND, kind):
            if obj["metadata"]["name"].startswith(name("webhook-certgen")):
                policy = obj["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(",")
                assert "hook-succeeded" in policy, (kind, policy)
    assert not find(FULL, "Job"), "cert-manager mode has no hook Jobs"
    # The maintained kube-webhook-certgen (the ingress-nginx one is retired); without a digest
    # the Job says why it carries the checkov digest skip, with one it needs none.
    for job in (create, patch):
        assert pod_spec(job)["containers"][0]["image"] == "ghcr.io/jkroepke/kube-webhook-certgen:1.8.7"
        assert job["metadata"]["annotations"]["checkov.io/skip2"].startswith(
            "CKV_K8S_43=webhook.tls.certgen.image.digest is unset")
    digest = "sha256:" + "2" * 64
    pinned = one(render("kind", f"webhook.tls.certgen.image.digest={digest}"), "Job",
                 name("webhook-certgen") + "-create")
    assert pod_spec(pinned)["containers"][0]["image"] == f"ghcr.io/jkroepke/kube-webhook-certgen:1.8.7@{digest}"
    assert "checkov.io/skip2" not in pinned["metadata"]["annotations"]


def test_helm_test_pod():
    pod = one(DEFAULT, "Pod", name("test"))
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["args"] == ["healthcheck", "run"]
    assert env(pod["spec"]["containers"][0])["FERROSTACK_FAILURE_THRESHOLD"] == "1"
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "targets")
    one(DEFAULT, "ConfigMap", vol["configMap"]["name"])
    off = render("default", "healthcheck.enabled=false")
    one(off, "ConfigMap", vol["configMap"]["name"])


def test_network_policy_peers():
    np = one(DEFAULT, "NetworkPolicy", name("backend-api"))
    peers = [p for rule in np["spec"]["ingress"] for p in rule["from"]]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in peers if "namespaceSelector" in p}
    assert namespaces == {"ingress", "monitoring"}
    egress_ports = {p["port"] for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 443}
    deny = one(DEFAULT, "NetworkPolicy", "fs-default-deny")
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def egress_to(np, port):
    """The peers an egress rule of the policy allows on TCP `port`."""
    return [peer for rule in np["spec"]["egress"] for peer in rule["to"]
            if {"protocol": "TCP", "port": port} in rule["ports"]]


@pytest.mark.parametrize("role", ["backend-api", "data-api"])
def test_api_egress_reaches_the_configured_object_storage(role):
    """The logship sidecar ships to logship.s3Endpoint: the full profile's
    https://minio.storage.svc:9000 is port 9000, not 443. Allowed to any address (ipBlock) and to
    the endpoint's namespace, since ipBlock may not match pod addresses (NetworkPolicy API)."""
    full_values = yaml.safe_load(open(PROFILE_FILES["full"][-1]).read())
    assert full_values["logship"]["s3Endpoint"] == "https://minio.storage.svc:9000"
    peers = egress_to(one(FULL, "NetworkPolicy", name(role)), 9000)
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}}} in peers
    assert any("ipBlock" in p for p in peers)
    # a URL without a port connects to its scheme's; the healthcheck has no sidecar, no such rule
    plain = render("default", "logship.s3Endpoint=http://objects.example.com")
    assert any("ipBlock" in p for p in egress_to(one(plain, "NetworkPolicy", name(role)), 80))
    assert not egress_to(one(FULL, "NetworkPolicy", name("healthcheck")), 9000)


@pytest.mark.parametrize("bad", [
    "image.tag=latest",
    "backendApi.autoscaling.mode=both",
    "backendApi.autoscaling.minReplicas=1",
    "ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/server-snippet=x",
    "webhook.validating.timeoutSeconds=30",
    "backendApi.extraEnv.FERROSTACK_API_TOKEN=x",
    "securityContext.runAsUser=0",
    "healthcheck.cron.concurrencyPolicy=Allow",
    "backendApi.pdb.maxUnavailable=0",
    "priorityClasses.high.name=system-node-critical",
    "canary.steps[1].pause.duration=",
    "unknownKey=1",
])
def test_schema_rejects(bad):
    out = helm(*template_args("default", (bad,)), check=False)
    assert out.returncode != 0 and "schema" in out.stderr, out.stderr
