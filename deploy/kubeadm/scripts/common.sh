#!/usr/bin/env bash
# Every node: kernel modules, sysctls, limits, containerd + runc (official release binaries,
# systemd cgroups), kubeadm/kubelet/kubectl from pkgs.k8s.io.
# Idempotent: re-provisioning converges. Env: NODE_IP, and the pins of deploy/versions.yaml that
# the Vagrantfile passes: K8S_MINOR (kubernetes_minor), CONTAINERD_VERSION (containerd),
# RUNC_VERSION (runc).
set -euo pipefail
: "${NODE_IP:?set NODE_IP}" "${K8S_MINOR:?set K8S_MINOR (kubernetes_minor in deploy/versions.yaml)}"
: "${CONTAINERD_VERSION:?set CONTAINERD_VERSION (containerd in deploy/versions.yaml)}"
: "${RUNC_VERSION:?set RUNC_VERSION (runc in deploy/versions.yaml)}"
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

# --- containerd and runc: the upstream release binaries, checksum-verified ------------------
# (Kubernetes 1.36+ wants containerd 2.2+; distribution packages lag behind, so the pinned
# upstream release is installed as the containerd "getting started" guide describes.)
apt-get update -qq
apt-get install -y -qq apt-transport-https ca-certificates curl gpg >/dev/null
install -d -m 0755 /etc/apt/keyrings
arch=$(dpkg --print-architecture)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$(/usr/local/bin/containerd --version 2>/dev/null | awk '{print $3}')" != "v$CONTAINERD_VERSION" ]; then
  base="https://github.com/containerd/containerd/releases/download/v$CONTAINERD_VERSION"
  tarball="containerd-$CONTAINERD_VERSION-linux-$arch.tar.gz"
  curl -fsSLo "$tmp/$tarball" "$base/$tarball"
  curl -fsSLo "$tmp/$tarball.sha256sum" "$base/$tarball.sha256sum"
  (cd "$tmp" && sha256sum --check --strict "$tarball.sha256sum")
  tar -C /usr/local -xzf "$tmp/$tarball"
  curl -fsSLo /etc/systemd/system/containerd.service \
    "https://raw.githubusercontent.com/containerd/containerd/v$CONTAINERD_VERSION/containerd.service"
fi
if [ "$(/usr/local/sbin/runc --version 2>/dev/null | awk 'NR == 1 {print $3}')" != "${RUNC_VERSION#v}" ]; then
  base="https://github.com/opencontainers/runc/releases/download/$RUNC_VERSION"
  curl -fsSLo "$tmp/runc.$arch" "$base/runc.$arch"
  curl -fsSLo "$tmp/runc.sha256sum" "$base/runc.sha256sum"
  (cd "$tmp" && grep -E "[ *]runc\.$arch\$" runc.sha256sum | sha256sum --check --strict)
  install -m 0755 "$tmp/runc.$arch" /usr/local/sbin/runc
fi

# --- Kubernetes packages (pkgs.k8s.io, one minor per repository) -----------------------------
if [ ! -f "/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg" ]; then
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/$K8S_MINOR/deb/Release.key" \
    | gpg --dearmor -o "/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg"
fi
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-$K8S_MINOR.gpg] https://pkgs.k8s.io/core:/stable:/$K8S_MINOR/deb/ /" \
  > /etc/apt/sources.list.d/kubernetes.list
apt-get update -qq
apt-mark unhold kubelet kubeadm kubectl >/dev/null 2>&1 || true
apt-get install -y -qq kubelet kubeadm kubectl >/dev/null
apt-mark hold kubelet kubeadm kubectl >/dev/null

install -d /etc/containerd
if ! grep -q 'SystemdCgroup = true' /etc/containerd/config.toml 2>/dev/null; then
  containerd config default > /etc/containerd/config.toml
  # kubelet uses the systemd cgroup driver (kubeadm default since 1.22): the runtime must match.
  sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
  grep -q 'SystemdCgroup = true' /etc/containerd/config.toml \
    || { echo "could not enable SystemdCgroup in containerd config" >&2; exit 1; }
fi
systemctl daemon-reload
systemctl enable --now containerd
systemctl restart containerd
crictl config --set runtime-endpoint=unix:///run/containerd/containerd.sock >/dev/null

# kubelet advertises the private-network address, not the NAT one Vagrant puts first.
echo "KUBELET_EXTRA_ARGS=--node-ip=$NODE_IP" > /etc/default/kubelet
systemctl enable kubelet
