#!/usr/bin/env bash
# Control plane: kubeadm init (metrics endpoints of etcd, scheduler, controller-manager and
# kube-proxy bound for Prometheus), Calico, and the join command + admin.conf for the host.
# Idempotent: skips init when the cluster exists. Env: NODE_IP, CALICO_VERSION, POD_CIDR.
set -euo pipefail
: "${NODE_IP:?set NODE_IP}"
CALICO_VERSION=${CALICO_VERSION:-v3.30.3}
POD_CIDR=${POD_CIDR:-10.244.0.0/16}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../files" ] || here=/vagrant/scripts
files=$here/../files
out=/vagrant/.cluster
export KUBECONFIG=/etc/kubernetes/admin.conf

if [ ! -f /etc/kubernetes/admin.conf ]; then
  sed -e "s|__NODE_IP__|$NODE_IP|g" -e "s|__POD_CIDR__|$POD_CIDR|g" -e "s|__NODE_NAME__|$(hostname -s)|g" \
    "$files/kubeadm-config.yaml" > /etc/kubernetes/kubeadm-config.yaml
  kubeadm init --config /etc/kubernetes/kubeadm-config.yaml --upload-certs
fi

# Calico through the Tigera operator; the IP pool must match the kubeadm podSubnet.
if ! kubectl get namespace tigera-operator >/dev/null 2>&1; then
  kubectl create -f "https://raw.githubusercontent.com/projectcalico/calico/$CALICO_VERSION/manifests/tigera-operator.yaml"
fi
kubectl wait --for=condition=Established crd/installations.operator.tigera.io --timeout=120s
sed -e "s|__POD_CIDR__|$POD_CIDR|g" "$files/calico-installation.yaml" | kubectl apply -f -
kubectl wait --for=condition=Ready node --all --timeout=600s

# Hand the host and the workers what they need (the share is two-way NFS).
install -d -m 0700 "$out"
install -m 0600 /etc/kubernetes/admin.conf "$out/admin.conf"
umask 077
kubeadm token create --ttl 2h --print-join-command > "$out/join.sh.tmp"
mv "$out/join.sh.tmp" "$out/join.sh"
echo "control plane ready: export KUBECONFIG=\$PWD/.cluster/admin.conf"
