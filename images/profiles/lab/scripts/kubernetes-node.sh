#!/usr/bin/env bash
# What every Kubernetes node of the lab runs, from the bake's build stage "kubernetes" (compiled from
# pinned source on the bake host) and Debian packages: kubelet and kube-proxy, the two local images
# imported into containerd's k8s.io namespace (nothing is ever pulled), the cgroup v1 hierarchy
# Kubernetes 1.20 expects, and the kernel settings kube-proxy needs. cluster:up writes the units.
set -euo pipefail

builds="${BOXCAR_BUILDS:?}/kubernetes"

for binary in kubelet kube-proxy; do
  install -m 0755 "$builds/bin/$binary" "/usr/local/bin/$binary"
done
/usr/local/bin/kubelet --version

# Kubernetes 1.20's cgroup v2 support was not yet stable: boot with the legacy hierarchy.
if ! grep -q 'systemd.unified_cgroup_hierarchy=0' /etc/default/grub; then
  sed -i 's/^GRUB_CMDLINE_LINUX="\(.*\)"$/GRUB_CMDLINE_LINUX="\1 systemd.unified_cgroup_hierarchy=0"/' /etc/default/grub
fi
grep -q '^GRUB_CMDLINE_LINUX=".*systemd.unified_cgroup_hierarchy=0"' /etc/default/grub
update-grub 2>&1 | tail -n 1

# kube-proxy's iptables rules must see bridged pod traffic.
cat >/etc/modules-load.d/boxcar-kubernetes.conf <<'CONF'
br_netfilter
overlay
CONF
cat >/etc/sysctl.d/61-boxcar-kubernetes.conf <<'CONF'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
CONF

# cluster:up configures and starts BIRD (the package enabled it with a default configuration).
systemctl disable bird.service

# The images: containerd runs only for the import, which is idempotent (same digests, same names).
systemctl start containerd.service
for _ in $(seq 1 30); do
  ctr version >/dev/null 2>&1 && break
  sleep 1
done
while read -r archive ref; do
  ctr --namespace k8s.io images import "$builds/images/$archive" >/dev/null
  # Listed first, then searched: grep -q would stop reading early and fail the pipe under pipefail.
  listed="$(ctr --namespace k8s.io images ls --quiet)"
  grep -qxF "$ref" <<<"$listed" || { echo "kubernetes-node: $ref missing after importing $archive" >&2; exit 1; }
  echo "kubernetes-node: image $ref"
done <"$builds/images/refs"
systemctl stop containerd.service
