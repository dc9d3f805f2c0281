#!/usr/bin/env bash
# Debian installs the CNI plugins in /usr/lib/cni; kubelet and the seed's tooling look in
# /opt/cni/bin. Link each plugin there (cluster:up copies cni/bin over them when the repo ships any).
set -euo pipefail

install -d -m 0755 /opt/cni/bin /etc/cni/net.d
for plugin in /usr/lib/cni/*; do
  ln -sfn "$plugin" "/opt/cni/bin/$(basename "$plugin")"
done
test -x /opt/cni/bin/ipvlan
test -x /opt/cni/bin/host-local
