#!/usr/bin/env bash
# Worker: join with the command the control plane published, with this node's labels.
# Idempotent: skips when already joined. Env: NODE_IP, NODE_LABELS.
set -euo pipefail
: "${NODE_IP:?set NODE_IP}" "${NODE_LABELS:=workload=apps}"
join=/vagrant/.cluster/join.sh

if [ -f /etc/kubernetes/kubelet.conf ]; then
  echo "already joined"
  exit 0
fi
for _ in $(seq 1 60); do [ -s "$join" ] && break; sleep 10; done
[ -s "$join" ] || { echo "no join command at $join: provision the control plane first" >&2; exit 1; }

# kubeadm join <endpoint> --token T --discovery-token-ca-cert-hash sha256:H (verified discovery)
read -r -a cmd < "$join"
if [ "${cmd[0]:-}" != kubeadm ] || [ "${cmd[1]:-}" != join ]; then
  echo "unexpected join command in $join" >&2
  exit 1
fi
echo "KUBELET_EXTRA_ARGS=--node-ip=$NODE_IP --node-labels=$NODE_LABELS" > /etc/default/kubelet
"${cmd[@]}"
