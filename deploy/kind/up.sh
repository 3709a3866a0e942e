#!/usr/bin/env bash
# Creates the kind cluster "ferrostack" (cluster.yaml) and installs, in order and idempotently:
#   1. Traefik ingress controller   (host ports 80/443 on the ingress-ready node)
#   2. cert-manager                 (+ a self-signed ClusterIssuer and a cluster CA)
#   3. kube-prometheus-stack        (deploy/observability/kube-prometheus-stack/values.yaml,
#                                    Alertmanager config from deploy/observability/alertmanager)
#      and the Pushgateway
#   4. metrics-server               (kubectl top, HPA resource metrics)
#   5. Argo Rollouts and KEDA       (the canary's Rollouts, split at Traefik; ScaledObjects)
#   6. the logging stack            (deploy/logging: the ECK operator, Elasticsearch + Kibana as
#                                    ECK resources with the index setup, Fluent Bit)
#   7. ferrostack                   (image built with docker, loaded into kind, chart deploy/helm/ferrostack)
# Every step is `kind create` only if absent, `helm upgrade --install`, or `kubectl apply`:
# running it again converges instead of failing. Chart versions and repositories come from
# deploy/versions.yaml (the Ansible playbooks read the same file). Needs docker, kind, kubectl, helm.
# Usage: deploy/kind/up.sh            (env: CLUSTER, KIND_NODE_IMAGE, SKIP_FERROSTACK=1, *_VERSION)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
need() { command -v "$1" >/dev/null 2>&1 || { echo "up.sh: $1 is required ($2)" >&2; exit 1; }; }
need docker "the kind nodes are containers"
need kind "https://kind.sigs.k8s.io"
need kubectl "any version within one minor of the cluster"
need helm "v3.8+ or v4"

versions="$root/deploy/versions.yaml"
# pin KEY: the value of KEY in deploy/versions.yaml (flat `key: value` lines).
pin() {
  awk -v k="$1" -F': ' '$1 == k { gsub(/"/, "", $2); print $2; found = 1 } END { exit !found }' "$versions" \
    || { echo "up.sh: $1 is missing from $versions" >&2; exit 1; }
}
CLUSTER=${CLUSTER:-ferrostack}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-$(pin traefik_chart)}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-$(pin cert_manager_chart)}
KUBE_PROMETHEUS_STACK_VERSION=${KUBE_PROMETHEUS_STACK_VERSION:-$(pin kube_prometheus_stack_chart)}
PUSHGATEWAY_VERSION=${PUSHGATEWAY_VERSION:-$(pin prometheus_pushgateway_chart)}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-$(pin metrics_server_chart)}
ARGO_ROLLOUTS_VERSION=${ARGO_ROLLOUTS_VERSION:-$(pin argo_rollouts_chart)}
KEDA_VERSION=${KEDA_VERSION:-$(pin keda_chart)}
ECK_OPERATOR_VERSION=${ECK_OPERATOR_VERSION:-$(pin eck_operator_chart)}
ELASTIC_STACK_VERSION=${ELASTIC_STACK_VERSION:-$(pin elastic_stack)}
FLUENT_BIT_VERSION=${FLUENT_BIT_VERSION:-$(pin fluent_bit_chart)}
# Chart repositories by chart key (the chart's name is the key with "_" as "-").
declare -A REPO
for c in traefik cert_manager kube_prometheus_stack prometheus_pushgateway metrics_server argo_rollouts keda \
  eck_operator fluent_bit; do
  REPO[$c]=$(pin "${c}_repo")
done
IMAGE=${IMAGE:-ghcr.io/ferrostack/ferrostack:dev}
CONTEXT="kind-$CLUSTER"

log() { printf '\n==> %s\n' "$*"; }
k() { kubectl --context "$CONTEXT" "$@"; }
h() { helm --kube-context "$CONTEXT" "$@"; }
# Create or update a Secret from literals/files without ever printing its content.
apply_secret() { k create secret generic "$@" --dry-run=client -o yaml | k apply -f - >/dev/null; }
# Create a Secret only when it does not exist yet (generated passwords must not rotate on re-run).
ensure_secret() {
  local ns=$1 name=$2; shift 2
  if ! k -n "$ns" get secret "$name" >/dev/null 2>&1; then
    k -n "$ns" create secret generic "$name" "$@" >/dev/null
  fi
}
# 144 random bits as hex (no `tr </dev/urandom | head`: that dies of SIGPIPE under pipefail)
random() { od -An -N18 -tx1 /dev/urandom | tr -d ' \n'; }
ensure_ns() { k create namespace "$1" --dry-run=client -o yaml | k apply -f - >/dev/null; }

log "cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "exists"
else
  kind create cluster --name "$CLUSTER" --config "$here/cluster.yaml" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
k cluster-info >/dev/null

# The platform's PriorityClass, above the apps' (deploy/platform/priority-class.yaml): every
# platform chart below names it, so it exists before the first of them.
k apply -f "$root/deploy/platform/priority-class.yaml"

log "1/7 ingress: traefik $TRAEFIK_VERSION"
# The shared values (Ansible's, one source), then kind's: host ports on the ingress-ready node.
# Its own ServiceMonitor stays off (no monitoring.coreos.com/v1 before step 3); step 3's values
# scrape Traefik with a PodMonitor instead.
h upgrade --install traefik traefik --repo "${REPO[traefik]}" --version "$TRAEFIK_VERSION" \
  --namespace ingress --create-namespace -f "$root/deploy/ansible/values/traefik/common.yaml" \
  -f "$here/values/traefik.yaml" --wait --timeout 5m

log "2/7 cert-manager $CERT_MANAGER_VERSION"
h upgrade --install cert-manager cert-manager --repo "${REPO[cert_manager]}" \
  --version "$CERT_MANAGER_VERSION" --namespace cert-manager --create-namespace \
  -f "$root/deploy/ansible/values/cert-manager.yaml" --wait --timeout 5m
k apply -f "$here/cluster-issuer.yaml"

log "3/7 kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION"
ensure_ns monitoring
obs="$root/deploy/observability"
apply_secret alertmanager-ferrostack -n monitoring \
  --from-file=alertmanager.yaml="$obs/alertmanager/alertmanager.yaml" \
  --from-file=ferrostack.tmpl="$obs/alertmanager/ferrostack.tmpl"
# Placeholders until the real receivers are set (kubectl -n monitoring edit secret alertmanager-receivers).
ensure_secret monitoring alertmanager-receivers \
  --from-literal=smtp-password=change-me \
  --from-literal=chat-webhook-url=http://127.0.0.1:9/chat-webhook-not-configured \
  --from-literal=pagerduty-routing-key=change-me
ensure_secret monitoring grafana-admin --from-literal=admin-user=admin --from-literal=admin-password="$(random)"
h upgrade --install kube-prometheus-stack kube-prometheus-stack --repo "${REPO[kube_prometheus_stack]}" \
  --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring \
  -f "$obs/kube-prometheus-stack/values.yaml" -f "$here/values/kube-prometheus-stack-kind.yaml" \
  --wait --timeout 10m
h upgrade --install prometheus-pushgateway prometheus-pushgateway --repo "${REPO[prometheus_pushgateway]}" \
  --version "$PUSHGATEWAY_VERSION" --namespace monitoring --wait --timeout 5m

log "4/7 metrics-server $METRICS_SERVER_VERSION"
h upgrade --install metrics-server metrics-server --repo "${REPO[metrics_server]}" \
  --version "$METRICS_SERVER_VERSION" --namespace kube-system --set 'args={--kubelet-insecure-tls}' --wait --timeout 5m

log "5/7 Argo Rollouts $ARGO_ROLLOUTS_VERSION, KEDA $KEDA_VERSION"
# Their CRDs before ferrostack's chart renders a Rollout or a ScaledObject; Argo Rollouts' values
# point its Traefik router at traefik.io (the group the Traefik of step 1 serves).
h upgrade --install argo-rollouts argo-rollouts --repo "${REPO[argo_rollouts]}" --version "$ARGO_ROLLOUTS_VERSION" \
  --namespace argo-rollouts --create-namespace -f "$root/deploy/ansible/values/argo-rollouts.yaml" --wait --timeout 5m
h upgrade --install keda keda --repo "${REPO[keda]}" --version "$KEDA_VERSION" \
  --namespace keda --create-namespace -f "$root/deploy/ansible/values/keda.yaml" --wait --timeout 5m

log "6/7 logging: ECK operator $ECK_OPERATOR_VERSION, Elasticsearch + Kibana $ELASTIC_STACK_VERSION, Fluent Bit $FLUENT_BIT_VERSION"
logging="$root/deploy/logging"
k apply -f "$logging/namespace.yaml"
# Users of the Elasticsearch file realm: basic-auth Secrets with generated passwords, created once.
ensure_secret logging elasticsearch-elastic-user --type=kubernetes.io/basic-auth \
  --from-literal=username=elastic --from-literal=password="$(random)" --from-literal=roles=superuser
ensure_secret logging elasticsearch-fluent-bit-user --type=kubernetes.io/basic-auth \
  --from-literal=username=fluent-bit --from-literal=password="$(random)" --from-literal=roles=ferrostack-logs-writer
h upgrade --install elastic-operator eck-operator --repo "${REPO[eck_operator]}" \
  --version "$ECK_OPERATOR_VERSION" --namespace elastic-system --create-namespace -f "$logging/values/eck-operator.yaml" --wait --timeout 5m
# Elasticsearch + Kibana (ECK resources); the post-install hook waits for Elasticsearch and
# applies the ILM policy, the index template and the write alias.
h upgrade --install logging "$logging/stack" --namespace logging -f "$logging/values/stack-kind.yaml" \
  --set version="$ELASTIC_STACK_VERSION" --wait --timeout 15m
k -n logging wait --for=jsonpath='{.status.health}'=green elasticsearch/elasticsearch --timeout 10m
k -n logging wait --for=jsonpath='{.status.health}'=green kibana/kibana --timeout 10m
h upgrade --install fluent-bit fluent-bit --repo "${REPO[fluent_bit]}" --version "$FLUENT_BIT_VERSION" \
  --namespace logging -f "$logging/values/fluent-bit.yaml" --wait --timeout 5m

log "7/7 ferrostack"
if [ "${SKIP_FERROSTACK:-0}" = 1 ]; then
  echo "skipped (SKIP_FERROSTACK=1)"
else
  dockerfile="$root/deploy/Dockerfile"; [ -f "$dockerfile" ] || dockerfile="$root/Dockerfile"
  docker build -t "$IMAGE" -f "$dockerfile" "$root"
  kind load docker-image "$IMAGE" --name "$CLUSTER"
  # The same per-environment values Ansible deploys "development" with (one source).
  values="$root/deploy/ansible/values/ferrostack"
  h upgrade --install ferrostack "$root/deploy/helm/ferrostack" --namespace ferrostack --create-namespace \
    -f "$values/common.yaml" -f "$values/development.yaml" \
    --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
    --wait --timeout 10m
fi

log "ready"
cat <<MSG
  kubectl --context $CONTEXT get pods -A
  Grafana:      kubectl --context $CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80
                (admin password: kubectl --context $CONTEXT -n monitoring get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d)
  Prometheus:   kubectl --context $CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090
  Kibana:       kubectl --context $CONTEXT -n logging port-forward svc/kibana-kb-http 5601
                (user elastic: kubectl --context $CONTEXT -n logging get secret elasticsearch-elastic-user -o jsonpath='{.data.password}' | base64 -d)
  ferrostack:   http://localhost/ through the ingress
MSG
