#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, built from the official Go modules
# (deploy/cluster/go.mod, deploy/cluster/kwok/go.mod; versions in deploy/versions.yaml).
#
#   scripts/cluster.sh build      build etcd, kube-apiserver, kube-controller-manager,
#                                 kube-scheduler, kubectl, kwok, helm 3, blackbox_exporter and
#                                 grpc-health-probe into .tools/k8s/bin
#   scripts/cluster.sh up DIR     start them on loopback (free ports), all state under DIR,
#                                 three KWOK nodes, a default StorageClass
#                                 with six PersistentVolumes, a test Deployment; prints the kubeconfig
#   scripts/cluster.sh down DIR   stop every process `up DIR` started (each its own group)
#
# No kubelets or containers: KWOK plays the nodes (heartbeats, pod lifecycle). etcd speaks
# plain HTTP on 127.0.0.1 only; everything else uses TLS from the PKI generated under DIR/pki
# (ECDSA P-256 keys). The apiserver advertises 127.0.0.1, which the endpoint reconciler refuses:
# it runs with --endpoint-reconciler-type none, so the `kubernetes` Service has no endpoints.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools/k8s"
BIN="$TOOLS/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly

# name  module-dir  main-package
COMPONENTS="
etcd                    deploy/cluster       go.etcd.io/etcd/server/v3
kube-apiserver          deploy/cluster       k8s.io/kubernetes/cmd/kube-apiserver
kube-controller-manager deploy/cluster       k8s.io/kubernetes/cmd/kube-controller-manager
kube-scheduler          deploy/cluster       k8s.io/kubernetes/cmd/kube-scheduler
kwok                    deploy/cluster/kwok  sigs.k8s.io/kwok/cmd/kwok
kubectl                 deploy/cluster       k8s.io/kubernetes/cmd/kubectl
helm                    deploy/cluster/helm  helm.sh/helm/v3/cmd/helm
blackbox_exporter       deploy/cluster/blackbox github.com/prometheus/blackbox_exporter
grpc-health-probe       deploy/cluster/grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe
"
# KWOK's default stages (as kwokctl configures them), copied from its module at build time
KWOK_STAGES="kustomize/stage/node/fast/node-initialize.yaml
kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
kustomize/stage/pod/fast/pod-ready.yaml
kustomize/stage/pod/fast/pod-complete.yaml
kustomize/stage/pod/fast/pod-delete.yaml"

# shellcheck source=scripts/pins.sh
source "$ROOT/scripts/pins.sh"

# The go.mod files require what deploy/versions.yaml pins (and every k8s.io staging module is
# replaced by the matching v0.<minor>.<patch>).
check_pins() {
  local k8s etcd kwok staging bad
  k8s=$(pin kubernetes)
  etcd=$(pin etcd)
  kwok=$(pin kwok)
  staging="v0.${k8s#v1.}"
  cd "$ROOT/deploy/cluster"
  [[ $(go list -m -f '{{.Version}}' k8s.io/kubernetes) == "$k8s" ]] || die "go.mod: k8s.io/kubernetes is not $k8s"
  [[ $(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3) == "$etcd" ]] || die "go.mod: etcd is not $etcd"
  bad=$(awk -v v="$staging" '$2 == "=>" && $1 ~ /^k8s\.io\// && $4 != v' go.mod)
  [[ -z "$bad" ]] || die "go.mod: staging replacements not at $staging: $bad"
  [[ $(cd kwok && go list -m -f '{{.Version}}' sigs.k8s.io/kwok) == "$kwok" ]] || die "kwok/go.mod: kwok is not $kwok"
  [[ $(cd helm && go list -m -f '{{.Version}}' helm.sh/helm/v3) == "$(pin helm_cli)" ]] || die "helm/go.mod: helm is not $(pin helm_cli)"
  [[ $(cd blackbox && go list -m -f '{{.Version}}' github.com/prometheus/blackbox_exporter) == "$(pin blackbox_exporter)" ]] \
    || die "blackbox/go.mod: blackbox_exporter is not $(pin blackbox_exporter)"
  [[ $(cd grpc-health-probe && go list -m -f '{{.Version}}' github.com/grpc-ecosystem/grpc-health-probe) == "$(pin grpc_health_probe)" ]] \
    || die "grpc-health-probe/go.mod: grpc-health-probe is not $(pin grpc_health_probe)"
  cd "$ROOT"
}

log() { printf '%s\n' "$*" >&2; }
die() { log "cluster.sh: $*"; exit 1; }

build_one() {
  local name=$1 moddir=$2 pkg=$3 stamp want start
  stamp="$TOOLS/stamps/$name"
  # no symbol table or DWARF (-s -w): nobody debugs these here, and linking the ~150 MB
  # binaries without them is markedly faster on a cold 2-core machine
  local ldflags="-s -w"
  if [[ $pkg == k8s.io/kubernetes/* ]]; then
    # what the Kubernetes release build stamps in (hack/lib/version.sh): without it the
    # binaries report v0.0.0-master, which charts' kubeVersion constraints reject
    local v k8s
    k8s=$(pin kubernetes)
    for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $v.gitVersion=$k8s -X $v.gitMajor=$(cut -d. -f1 <<< "${k8s#v}")"
      ldflags+=" -X $v.gitMinor=$(cut -d. -f2 <<< "$k8s") -X $v.gitTreeState=clean"
    done
  fi
  if [[ $pkg == helm.sh/* ]]; then  # what helm's Makefile stamps in, for `helm version`
    ldflags+=" -X helm.sh/helm/v3/internal/version.version=$(pin helm_cli) -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  fi
  want=$( { go version; echo "$pkg $ldflags"; cat "$ROOT/$moddir/go.mod" "$ROOT/$moddir/go.sum"; } | sha256sum | cut -d' ' -f1)
  if [[ -x "$BIN/$name" && -f "$stamp" && $(cat "$stamp") == "$want" ]]; then
    printf '%-24s up to date (%s)\n' "$name" "$pkg"
    return
  fi
  start=$SECONDS
  (cd "$ROOT/$moddir" && go build -trimpath -ldflags "$ldflags" -o "$BIN/$name" "$pkg")
  echo "$want" > "$stamp"
  printf '%-24s built in %ss (%s, load %s)\n' "$name" "$((SECONDS - start))" "$pkg" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
}

cmd_build() {
  command -v go > /dev/null || die "go not found: the control plane is built from Go modules (Go $(awk '/^go /{print $2}' "$ROOT/deploy/cluster/go.mod") or newer, with the Go module proxy)"
  mkdir -p "$BIN" "$TOOLS/stamps"
  check_pins
  local name moddir pkg kwokdir f
  while read -r name moddir pkg; do
    [[ -n "$name" ]] || continue
    build_one "$name" "$moddir" "$pkg"
  done <<< "$COMPONENTS"
  kwokdir=$(cd "$ROOT/deploy/cluster/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  {
    cat <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
# kwok applies no defaults to a configuration read from a file: these are its defaults
options:
  nodeLeaseDurationSeconds: 40
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
EOF
    while read -r f; do echo "---"; cat "$kwokdir/$f"; done <<< "$KWOK_STAGES"
    # KWOK completes only a Job's pods; `helm test` waits for its hook pod to succeed, so the
    # same stage also completes pods annotated as helm test hooks.
    echo "---"
    sed -e 's/name: pod-complete$/name: pod-complete-helm-test/' \
      -e "s/'.metadata.ownerReferences.\[\].kind'/'.metadata.annotations[\"helm.sh\/hook\"]'/" \
      -e "s/- 'Job'$/- 'test'/" "$kwokdir/kustomize/stage/pod/fast/pod-complete.yaml"
  } > "$TOOLS/kwok.yaml"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cert NAME CN O [extensions...]: a key and a certificate signed by DIR/pki/ca
cert() {
  local pki=$1 name=$2 cn=$3 o=$4 ext=$5 subj="/CN=$3"
  [[ -n "$o" ]] && subj="/O=$o/CN=$cn"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$name.key" -subj "$subj" \
    -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

kubeconfig() {
  local file=$1 server=$2 pki=$3 user=$4
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferrostack
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: ferrostack
  context: {cluster: ferrostack, user: $user}
current-context: ferrostack
EOF
}

gen_pki() {
  local pki=$1 client='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'
  mkdir -p "$pki"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/ca.key" -days 30 -sha256 \
    -subj "/CN=ferrostack-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$pki/ca.crt" 2>/dev/null
  cert "$pki" apiserver kube-apiserver "" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local'
  cert "$pki" admin kubernetes-admin system:masters "$client"
  cert "$pki" controller-manager system:kube-controller-manager "" "$client"
  cert "$pki" scheduler system:kube-scheduler "" "$client"
  cert "$pki" kwok kwok-controller system:masters "$client"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key" 2>/dev/null
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# start DIR NAME ARGS...: runs BIN/NAME in its own process group, logs to DIR/logs/NAME.log
start() {
  local dir=$1 name=$2
  shift 2
  setsid "$BIN/$name" "$@" > "$dir/logs/$name.log" 2>&1 < /dev/null &
  echo "$! $name" >> "$dir/pids"
}

wait_for() { # wait_for SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what (logs in $DIR/logs)"
    sleep 0.5
  done
}

kctl() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

nodes_yaml() {
  local i name zone labels taints
  for i in 0 1 2; do
    zone="zone-$(printf 'abc' | cut -c$((i + 1)))"
    case $i in
      0) name=ferrostack-control-plane
         labels='ingress-ready: "true"
    node-role.kubernetes.io/control-plane: ""'
         taints='taints:
  - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}' ;;
      1) name=ferrostack-worker
         labels='tier: high
    workload: apps
    ferrostack.dev/node: high-capacity'
         taints='' ;;
      2) name=ferrostack-worker2
         labels='tier: general
    workload: apps
    ferrostack.dev/node: general'
         taints='' ;;
    esac
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: $zone
    $labels
spec:
  $taints
status:
  allocatable: {cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
EOF
  done
}

# kind's default StorageClass is named `standard`; no provisioner runs here, so a claim binds to
# one of the static PersistentVolumes once its pod is scheduled (WaitForFirstConsumer), as local
# volumes do.
storage_yaml() {
  local i
  cat <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
EOF
  for i in 1 2 3 4 5 6; do
    cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: standard-$i}
spec:
  storageClassName: standard
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/ferrostack-pv/$i}
EOF
  done
}

cmd_up() {
  DIR=$(mkdir -p "$1" && cd "$1" && pwd)
  [[ -f "$DIR/pids" ]] && die "$DIR/pids exists: run 'scripts/cluster.sh down $DIR' first"
  local c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    [[ -x "$BIN/$c" ]] || die "$BIN/$c missing: run 'scripts/cluster.sh build' first"
  done
  KUBECTL="$BIN/kubectl"
  [[ -x "$KUBECTL" ]] || KUBECTL=$(command -v kubectl) || die "no kubectl"
  local t0=$SECONDS pki="$DIR/pki" etcd_port peer_port api_port kcm_port sched_port kwok_port
  rm -rf "$DIR/etcd" "$DIR/logs" "$pki"
  mkdir -p "$DIR/logs"
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  kcm_port=$(free_port); sched_port=$(free_port); kwok_port=$(free_port)
  gen_pki "$pki"
  local server="https://127.0.0.1:$api_port"
  kubeconfig "$DIR/kubeconfig" "$server" "$pki" admin
  kubeconfig "$DIR/controller-manager.kubeconfig" "$server" "$pki" controller-manager
  kubeconfig "$DIR/scheduler.kubeconfig" "$server" "$pki" scheduler
  kubeconfig "$DIR/kwok.kubeconfig" "$server" "$pki" kwok
  : > "$DIR/pids"
  UP_OK=0
  trap '[[ $UP_OK == 1 ]] || { log "up failed: stopping what started"; cmd_down "$DIR"; }' EXIT

  start "$DIR" etcd --name ferrostack --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "ferrostack=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync
  wait_for 20 etcd curl -sf "http://127.0.0.1:$etcd_port/health"

  start "$DIR" kube-apiserver --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$api_port" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true \
    --endpoint-reconciler-type none
  wait_for 45 kube-apiserver curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" \
    --key "$pki/admin.key" "$server/readyz"

  start "$DIR" kube-controller-manager --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
    --service-account-private-key-file "$pki/sa.key" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range 10.96.0.0/16
  start "$DIR" kube-scheduler --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false
  start "$DIR" kwok --kubeconfig "$DIR/kwok.kubeconfig" --config "$TOOLS/kwok.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 --cidr 10.244.0.0/16 --node-ip 127.0.0.1 \
    --server-address "127.0.0.1:$kwok_port"

  nodes_yaml > "$DIR/nodes.yaml"
  kctl apply -f "$DIR/nodes.yaml" > /dev/null
  storage_yaml > "$DIR/storage.yaml"
  kctl apply -f "$DIR/storage.yaml" > /dev/null
  wait_for 40 "three Ready nodes" kctl wait --for=condition=Ready node --all --timeout=1s
  # The default ServiceAccount must exist before the test Pod can be admitted.
  wait_for 30 "default ServiceAccount" kctl get serviceaccount default
  kctl create deployment harness-check --image="registry.k8s.io/pause:$(pin pause)" > /dev/null
  wait_for 40 "test Pod Running" bash -c \
    "[[ \$('$KUBECTL' --kubeconfig '$DIR/kubeconfig' get pods -l app=harness-check \
       -o jsonpath='{.items[*].status.phase}') == Running ]]"
  kctl get nodes -o wide >&2
  kctl get pods -o wide >&2
  UP_OK=1
  log "control plane up in $((SECONDS - t0))s: apiserver $server, logs in $DIR/logs"
  echo "$DIR/kubeconfig"
}

# Stops the components in the reverse order of their start, each (its whole process group)
# before the next: the apiserver exits promptly only while etcd still answers.
cmd_down() {
  local dir=$1 pid name i
  [[ -f "$dir/pids" ]] || { log "nothing running under $dir"; return 0; }
  while read -r pid name; do
    kill -TERM -- "-$pid" 2> /dev/null || continue
    for i in $(seq 1 60); do
      kill -0 -- "-$pid" 2> /dev/null || break
      sleep 0.25
    done
    if kill -0 -- "-$pid" 2> /dev/null; then
      log "$name ($pid) still running 15s after SIGTERM: SIGKILL"
      kill -KILL -- "-$pid" 2> /dev/null || true
    fi
  done < <(tac "$dir/pids")
  rm -f "$dir/pids"
  log "stopped (state kept in $dir)"
}

case "${1:-}" in
  build) cmd_build ;;
  up) [[ $# -eq 2 ]] || die "usage: $0 up DIR"; cmd_up "$2" ;;
  down) [[ $# -eq 2 ]] || die "usage: $0 down DIR"; cmd_down "$2" ;;
  *) die "usage: $0 build | up DIR | down DIR" ;;
esac
