#!/usr/bin/env bash
# etcd is installed on every Kubernetes node but runs only on the cluster's etcd node, which cluster:up
# chooses and configures. No member data may be baked in: a fresh data dir per node.
set -euo pipefail

systemctl disable etcd.service
systemctl stop etcd.service 2>/dev/null || true
rm -rf /var/lib/etcd/default /var/lib/etcd/member
test -x /usr/bin/etcd
