#!/usr/bin/env bash
# Every node: kernel modules, sysctls, limits, containerd (systemd cgroups), kubeadm/kubelet/kubectl.
# Idempotent: re-provisioning converges. Env: K8S_MINOR (e.g. v1.37), NODE_IP.
set -euo pipefail
: "${K8S_MINOR:?set K8S_MINOR, e.g. v1.37}" "${NODE_IP:?set NODE_IP}"
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../files" ] || here=/vagrant/scripts   # Vagrant copies the script alone to /tmp
files=$here/../files
export DEBIAN_FRONTEND=noninteractive

# --- swap off (kubelet default failSwapOn) --------------------------------------------------
swapoff -a
sed -i -E 's@^([^#].*\sswap\s.*)$@# \1@' /etc/fstab

# --- kernel modules and sysctls (case study tuning + kubeadm prerequisites) -----------------
install -m 0644 "$files/modules-load-kubernetes.conf" /etc/modules-load.d/kubernetes.conf
while read -r mod; do
  case "$mod" in ''|'#'*) continue ;; esac
  modprobe "$mod"
done < /etc/modules-load.d/kubernetes.conf
install -m 0644 "$files/sysctl-kubernetes.conf" /etc/sysctl.d/90-kubernetes.conf
sysctl --system >/dev/null

# --- file and process limits ------------------------------------------------------------------
install -m 0644 "$files/limits-kubernetes.conf" /etc/security/limits.d/90-kubernetes.conf
install -d /etc/systemd/system.conf.d
install -m 0644 "$files/systemd-limits.conf" /etc/systemd/system.conf.d/90-kubernetes.conf
systemctl daemon-reexec

# --- containerd ---------------------------------------------------------------------------
apt-get update -qq
apt-get install -y -qq apt-transport-https ca-certificates curl gpg >/dev/null
install -d -m 0755 /etc/apt/keyrings
if [ ! -f /etc/apt/keyrings/docker.gpg ]; then
  curl -fsSL https://download.docker.com/linux/debian/gpg | gpg --dearmor -o /etc/apt/keyrings/docker.gpg
fi
# shellcheck disable=SC1091  # os-release exists on every Debian
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
echo "deb [signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian $codename stable" \
  > /etc/apt/sources.list.d/docker.list
# --- Kubernetes packages (pkgs.k8s.io, one minor per repository) -----------------------------
if [ ! -f "/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg" ]; then
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/$K8S_MINOR/deb/Release.key" \
    | gpg --dearmor -o "/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg"
fi
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg] https://pkgs.k8s.io/core:/stable:/$K8S_MINOR/deb/ /" \
  > /etc/apt/sources.list.d/kubernetes.list
apt-get update -qq
apt-mark unhold kubelet kubeadm kubectl >/dev/null 2>&1 || true
apt-get install -y -qq containerd.io kubelet kubeadm kubectl >/dev/null
apt-mark hold kubelet kubeadm kubectl >/dev/null

install -d /etc/containerd
if ! grep -q 'SystemdCgroup = true' /etc/containerd/config.toml 2>/dev/null; then
  containerd config default > /etc/containerd/config.toml
  # kubelet uses the systemd cgroup driver (kubeadm default since 1.22): the runtime must match.
  sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
  grep -q 'SystemdCgroup = true' /etc/containerd/config.toml \
    || { echo "could not enable SystemdCgroup in containerd config" >&2; exit 1; }
fi
systemctl enable --now containerd
systemctl restart containerd
crictl config --set runtime-endpoint=unix:///run/containerd/containerd.sock >/dev/null

# kubelet advertises the private-network address, not the NAT one Vagrant puts first.
echo "KUBELET_EXTRA_ARGS=--node-ip=$NODE_IP" > /etc/default/kubelet
systemctl enable kubelet
