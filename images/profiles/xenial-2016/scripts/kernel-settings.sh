#!/usr/bin/env bash
# Kernel settings every Kubernetes node needs: packet forwarding for pod traffic, and bridged
# traffic passing through iptables so kube-proxy's service rules see it (br_netfilter is a
# module of its own since Linux 3.18 and is not loaded by default on xenial).
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"

replace_file /etc/modules-load.d/boxcar-kubernetes.conf 0644 <<'MODULES'
# boxcar: kube-proxy (iptables mode) needs bridged traffic to traverse iptables
br_netfilter
# docker's storage driver (docker.sh)
overlay
MODULES

replace_file /etc/sysctl.d/60-boxcar-kubernetes.conf 0644 <<'SYSCTL'
# boxcar: pod and service traffic
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
SYSCTL

modprobe br_netfilter
modprobe overlay
sysctl -q -p /etc/sysctl.d/60-boxcar-kubernetes.conf
log "kernel modules and sysctls set"
