"""The kube-score, Polaris and kube-linter rules we follow (reference k8s.md §1), and the Pod
Security Standards "restricted" profile, encoded as tests over every rendered profile (those
tools cannot run offline here; the GitHub kind job runs them for real).

Not followed, on purpose: Polaris metadataAndInstanceMismatched (Helm's convention is
instance = release name, names are <release>-<component>); kube-score/kube-linter rules
about replicas apply, but the one-shot pods (helm test, hook Jobs) have no PDB or probes."""

import re

import pytest

from conftest import containers, find, name, pod_labels, pod_spec, render, workloads

DEPRECATED = {"extensions/v1beta1", "apps/v1beta1", "apps/v1beta2", "batch/v1beta1",
              "policy/v1beta1", "networking.k8s.io/v1beta1", "autoscaling/v2beta1",
              "autoscaling/v2beta2", "autoscaling/v1"}
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SENSITIVE_ENV = re.compile(r"(?i)(password|token|bearer|secret|AWS_SECRET_ACCESS_KEY|"
                           r"GOOGLE_APPLICATION_CREDENTIALS|AZURE_.*KEY|OCI_CLI_KEY_CONTENT)")
PSS_VOLUMES = {"configMap", "downwardAPI", "emptyDir", "projected", "secret", "csi",
               "persistentVolumeClaim", "ephemeral", "image"}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def services(docs):
    return [d for d in docs if d["kind"] == "Service"]


def selected_by_service(docs, w):
    return any(selects(s["spec"].get("selector"), pod_labels(w)) for s in services(docs))


def autoscaled(docs, w):
    n = w["metadata"]["name"]
    return any(d["spec"]["scaleTargetRef"]["name"] == n
               for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"))


def is_rollout_template(docs, w):
    return w["kind"] == "Deployment" and any(
        r["spec"]["workloadRef"]["name"] == w["metadata"]["name"] for r in find(docs, "Rollout"))


def long_running(docs):
    return [w for w in workloads(docs) if w["kind"] == "Deployment"]


# --- every object -------------------------------------------------------------------------

def test_stable_api_versions(docs):
    assert not [(d["kind"], d["apiVersion"]) for d in docs if d["apiVersion"] in DEPRECATED]


def test_label_values(docs):
    for d in docs:
        for k, v in d["metadata"].get("labels", {}).items():
            assert LABEL_VALUE.match(str(v)), (d["kind"], k, v)


def test_namespaced_objects_have_the_release_namespace(docs):
    cluster_scoped = {"PriorityClass", "ClusterRole", "ClusterRoleBinding",
                      "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
    for d in docs:
        if d["kind"] in cluster_scoped:
            assert "namespace" not in d["metadata"]
        elif not (d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]):
            assert d["metadata"]["namespace"] == "dev", (d["kind"], d["metadata"]["name"])


def test_recommended_labels(docs):
    for d in docs:
        labels = d["metadata"]["labels"]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/managed-by", "helm.sh/chart", "app.kubernetes.io/component"):
            assert k in labels, (d["kind"], d["metadata"]["name"], k)


# --- workloads ----------------------------------------------------------------------------

def test_selector_matches_template_and_is_stable(docs):
    for w in workloads(docs):
        if w["kind"] in ("Deployment",):
            sel = w["spec"]["selector"]["matchLabels"]
            assert selects(sel, pod_labels(w))
            assert not {"app.kubernetes.io/version", "helm.sh/chart"} & set(sel)


def test_resources_requests_and_limits(docs):
    for w in workloads(docs):
        for c in containers(pod_spec(w)):
            r = c["resources"]
            for side in ("requests", "limits"):
                for res in ("cpu", "memory", "ephemeral-storage"):
                    assert res in r.get(side, {}), (w["metadata"]["name"], c["name"], side, res)


def test_image_tags(docs, profile):
    for w in workloads(docs):
        for c in containers(pod_spec(w)):
            img = c["image"]
            ref = img.split("@")[0]
            assert ":" in ref.rsplit("/", 1)[-1] and not ref.endswith(":latest"), img
            if profile != "kind":
                assert c["imagePullPolicy"] == "Always", (w["metadata"]["name"], c["name"])


def test_no_duplicate_env(docs):
    for w in workloads(docs):
        for c in containers(pod_spec(w)):
            names = [e["name"] for e in c.get("env", [])]
            assert len(names) == len(set(names)), names


def test_pss_restricted(docs):
    for w in workloads(docs):
        spec = pod_spec(w)
        n = w["metadata"]["name"]
        psc = spec["securityContext"]
        for host in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
            assert host not in spec, (n, host)
        assert psc["runAsNonRoot"] is True and psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert psc["runAsUser"] >= 10001 and psc["runAsGroup"] >= 10001
        for v in spec.get("volumes", []):
            assert set(v) - {"name"} <= PSS_VOLUMES, (n, v)
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (n, c["name"])
            assert sc["privileged"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["runAsNonRoot"] is True
            assert sc["runAsUser"] >= 10001 and sc["runAsGroup"] >= 10001
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"]["type"] == "RuntimeDefault"
            assert "procMount" not in sc
            for p in c.get("ports", []):
                assert "hostPort" not in p
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in c:
                    action = c[probe].get("httpGet") or c[probe].get("tcpSocket") or {}
                    assert "host" not in action


def test_priority_class_on_every_pod(docs):
    classes = {d["metadata"]["name"] for d in find(docs, "PriorityClass")}
    for w in workloads(docs):
        hook = w["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        if "pre-install" in hook:
            # Pre-install hooks run before the release's PriorityClasses exist.
            assert "priorityClassName" not in pod_spec(w)
            assert w["metadata"]["annotations"]["polaris.fairwinds.com/priorityClassNotSet-exempt"] == "true"
            continue
        pc = pod_spec(w)["priorityClassName"]
        assert pc in classes, (w["metadata"]["name"], pc)


def test_service_accounts_exist_and_tokens_are_not_mounted(docs):
    sas = {d["metadata"]["name"]: d for d in find(docs, "ServiceAccount")}
    for w in workloads(docs):
        spec = pod_spec(w)
        sa = spec["serviceAccountName"]
        assert sa in sas and sa != "default", (w["metadata"]["name"], sa)
        # The pods that call the API mount a token; only certgen's account mounts one for every
        # pod (its hooks), the others opt in per pod.
        needs_api = sa in (name("webhook-certgen"), name("webhook-audit"),
                           name("healthcheck-serve")) or (
            sa == name("webhook") and any(d["kind"] == "ClusterRole" and d["metadata"]["name"].startswith(
                name("webhook") + "-namespaces-") for d in docs))
        assert spec["automountServiceAccountToken"] is needs_api, w["metadata"]["name"]
        assert sas[sa]["automountServiceAccountToken"] is (sa == name("webhook-certgen"))


def test_no_secrets_in_env(docs):
    for w in workloads(docs):
        for c in containers(pod_spec(w)):
            assert "envFrom" not in c
            for e in c.get("env", []):
                assert "secretKeyRef" not in e.get("valueFrom", {}), e
                if "value" in e:
                    assert not SENSITIVE_ENV.search(e["name"]), e["name"]
                    assert "PRIVATE KEY" not in e["value"]


def test_probes_on_served_pods(docs):
    for w in workloads(docs):
        if not selected_by_service(docs, w):
            continue
        for c in containers(pod_spec(w)):
            if c["name"] == "logship" or "ports" in c:
                for p in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert p in c, (w["metadata"]["name"], c["name"], p)
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert c["livenessProbe"] != c["readinessProbe"]
                declared = {p["name"] for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
                for p in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert c[p]["httpGet"]["port"] in declared


def test_deployments_replicas_or_autoscaler(docs):
    for w in long_running(docs):
        n = w["metadata"]["name"]
        if is_rollout_template(docs, w):
            assert w["spec"]["replicas"] == 0
        elif autoscaled(docs, w):
            assert "replicas" not in w["spec"], f"{n}: an autoscaler owns the count"
        elif selected_by_service(docs, w):
            assert w["spec"]["replicas"] >= 2, n
        assert w["spec"]["strategy"]["type"] == "RollingUpdate"


def test_soft_anti_affinity_and_spread(docs):
    for w in long_running(docs):
        spec = pod_spec(w)
        labels = pod_labels(w)
        anti = spec["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti, "soft only (3.2.a)"
        terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname" and
                   selects(t["podAffinityTerm"]["labelSelector"]["matchLabels"], labels)
                   for t in terms)
        tsc = spec["topologySpreadConstraints"]
        assert tsc
        for t in tsc:
            assert t["maxSkew"] >= 1 and t["topologyKey"]
            assert t["whenUnsatisfiable"] == "ScheduleAnyway"
            assert selects(t["labelSelector"]["matchLabels"], labels)


def test_pdbs(docs):
    pdbs = find(docs, "PodDisruptionBudget")
    for p in pdbs:
        assert p["apiVersion"] == "policy/v1"
        s = p["spec"]
        assert set(s) <= {"selector", "minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy"}
        assert ("minAvailable" in s) != ("maxUnavailable" in s)
        assert s.get("maxUnavailable") not in (0, "0%") and s.get("minAvailable") != "100%"
        assert s["unhealthyPodEvictionPolicy"] in ("AlwaysAllow", "IfHealthyBudget")
        assert any(selects(s["selector"]["matchLabels"], pod_labels(w)) for w in long_running(docs))
    for w in long_running(docs):
        replicas = w["spec"].get("replicas")
        if replicas is None or replicas >= 2:
            assert any(selects(p["spec"]["selector"]["matchLabels"], pod_labels(w)) for p in pdbs), \
                w["metadata"]["name"]


def test_hpas(docs):
    targets = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for h in find(docs, "HorizontalPodAutoscaler"):
        assert h["apiVersion"] == "autoscaling/v2"
        ref = h["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) in targets
        assert h["spec"]["minReplicas"] >= 2 and h["spec"]["maxReplicas"] > h["spec"]["minReplicas"]
        assert {"scaleUp", "scaleDown"} <= set(h["spec"]["behavior"])


def test_never_hpa_and_keda_on_one_workload(docs):
    seen = {}
    for d in docs:
        if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
            ref = d["spec"]["scaleTargetRef"]["name"]
            assert ref not in seen, f"{ref} scaled by {seen.get(ref)} and {d['kind']}"
            seen[ref] = d["kind"]


def test_cronjob(docs):
    for cj in find(docs, "CronJob"):
        s = cj["spec"]
        assert s["concurrencyPolicy"] == "Forbid" and s["startingDeadlineSeconds"] > 0
        assert s["timeZone"] and "successfulJobsHistoryLimit" in s and "failedJobsHistoryLimit" in s
        job = s["jobTemplate"]["spec"]
        assert "ttlSecondsAfterFinished" not in job, "kube-linter: not inside a CronJob"
        assert job["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    for j in find(docs, "Job"):
        assert j["spec"]["ttlSecondsAfterFinished"] > 0
        assert j["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_services_target_pods(docs):
    templates = [pod_labels(w) for w in workloads(docs)]
    for s in services(docs):
        assert s["spec"]["type"] == "ClusterIP"
        assert any(selects(s["spec"]["selector"], t) for t in templates), s["metadata"]["name"]


def test_ingress(docs):
    svc = {s["metadata"]["name"]: s for s in services(docs)}
    for ing in find(docs, "Ingress"):
        assert ing["spec"]["ingressClassName"]
        assert ing["spec"]["tls"], "Polaris tlsSettingsMissing"
        assert not [k for k in ing["metadata"].get("annotations", {}) if "snippet" in k]
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                b = p["backend"]["service"]
                assert b["port"]["number"] in {x["port"] for x in svc[b["name"]]["spec"]["ports"]}


def test_network_policies(docs):
    nps = find(docs, "NetworkPolicy")
    if not nps:
        pytest.skip("networkPolicy.enabled=false")
    templates = [(w, pod_labels(w)) for w in workloads(docs)]
    for np in nps:
        assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        sel = np["spec"]["podSelector"]["matchLabels"]
        assert any(selects(sel, l) for _, l in templates) or np["metadata"]["name"].endswith("-test"), \
            f'{np["metadata"]["name"]} selects no pod'
        if np["spec"].get("egress"):
            dns = np["spec"]["egress"][0]
            assert {p["port"] for p in dns["ports"]} == {53}
            assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    for w, labels in templates:
        covering = [np for np in nps if selects(np["spec"]["podSelector"]["matchLabels"], labels)]
        assert len(covering) >= 2, f'{w["metadata"]["name"]}: default deny + its own policy'
    # Polaris missingNetworkPolicy: exactly one label pair, ingress and egress rules.
    for w in long_running(docs):
        own = [np for np in nps if np["metadata"]["name"] == w["metadata"]["name"]]
        assert len(own) == 1, w["metadata"]["name"]
        assert len(own[0]["spec"]["podSelector"]["matchLabels"]) == 1
        assert own[0]["spec"]["ingress"] and own[0]["spec"]["egress"]


def test_no_rbac_wildcards_or_exec(docs):
    for r in find(docs, "Role") + find(docs, "ClusterRole"):
        for rule in r["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, [])
            assert not {"pods/exec", "pods/attach"} & set(rule["resources"])
            assert not {"bind", "escalate", "impersonate"} & set(rule["verbs"])
        if r["kind"] == "ClusterRole":
            # Cluster-wide, a write is only ever to named objects; reading (the webhook's
            # namespace watch, the audit's lists) may range wider.
            for rule in r["rules"]:
                read_only = set(rule["verbs"]) <= {"get", "list", "watch"}
                assert read_only or rule.get("resourceNames"), ("cluster-wide writes only by name", r["metadata"]["name"])
                assert "secrets" not in rule["resources"] or rule.get("resourceNames"), r["metadata"]["name"]
    for b in find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding"):
        assert b["roleRef"]["name"] != "cluster-admin"
