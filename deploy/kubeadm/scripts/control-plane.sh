#!/usr/bin/env bash
# Control plane: kubeadm init (metrics endpoints of etcd, scheduler, controller-manager and
# kube-proxy bound for Prometheus), Calico, the local-path storage provisioner as the default
# StorageClass, and the join command + admin.conf for the host.
# Idempotent: skips init when the cluster exists. Env: NODE_IP, CALICO_VERSION and
# LOCAL_PATH_PROVISIONER_VERSION (the Vagrantfile passes deploy/versions.yaml's pins), POD_CIDR.
set -euo pipefail
: "${NODE_IP:?set NODE_IP}" "${CALICO_VERSION:?set CALICO_VERSION (calico in deploy/versions.yaml)}"
: "${LOCAL_PATH_PROVISIONER_VERSION:?set LOCAL_PATH_PROVISIONER_VERSION (local_path_provisioner in deploy/versions.yaml)}"
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

# Calico through the Tigera operator; the IP pool must match the kubeadm podSubnet. Since Calico
# 3.30 the CRDs (operator.tigera.io and crd.projectcalico.org) are a manifest of their own, applied
# first; server-side apply because they exceed the client-side annotation limit, and so that a
# newer CALICO_VERSION upgrades them on re-provisioning.
calico="https://raw.githubusercontent.com/projectcalico/calico/$CALICO_VERSION/manifests"
kubectl apply --server-side --force-conflicts -f "$calico/operator-crds.yaml"
kubectl wait --for=condition=Established crd/installations.operator.tigera.io --timeout=120s
kubectl apply --server-side --force-conflicts -f "$calico/tigera-operator.yaml"
sed -e "s|__POD_CIDR__|$POD_CIDR|g" "$files/calico-installation.yaml" | kubectl apply -f -
kubectl wait --for=condition=Ready node --all --timeout=600s

# Storage: kubeadm brings no provisioner, so every PersistentVolumeClaim of the platform (Prometheus
# 20Gi, Grafana 5Gi, Elasticsearch, Jenkins) would stay Pending. Rancher's local-path-provisioner
# creates a hostPath volume on the node the pod lands on (/opt/local-path-provisioner; its
# StorageClass "local-path" binds WaitForFirstConsumer); it is made the cluster default, so claims
# that name no class get it. Its pod runs once a worker has joined.
kubectl apply -f "https://raw.githubusercontent.com/rancher/local-path-provisioner/$LOCAL_PATH_PROVISIONER_VERSION/deploy/local-path-storage.yaml"
kubectl annotate --overwrite storageclass local-path storageclass.kubernetes.io/is-default-class=true

# Hand the host and the workers what they need (the share is two-way NFS).
install -d -m 0700 "$out"
install -m 0600 /etc/kubernetes/admin.conf "$out/admin.conf"
umask 077
kubeadm token create --ttl 2h --print-join-command > "$out/join.sh.tmp"
mv "$out/join.sh.tmp" "$out/join.sh"
echo "control plane ready: export KUBECONFIG=\$PWD/.cluster/admin.conf"
