#!/usr/bin/env bash
# CNI plugins into /opt/cni/bin, where the 2016 kubelet looks: the containernetworking release
# (bridge, host-local, ipvlan, loopback, ... as the seed shipped them) plus calico and
# calico-ipam. /etc/cni/net.d stays empty: cluster:up writes 10-calico.conf.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env CNI_PLUGINS_VERSION CALICO_CNI_VERSION

stamp=$BOXCAR_STATE/cni-plugins.versions
wanted="cni ${CNI_PLUGINS_VERSION} calico-cni ${CALICO_CNI_VERSION}"
install -d -m 0755 /opt/cni/bin /etc/cni/net.d "$BOXCAR_STATE"
if [[ $(cat "$stamp" 2>/dev/null || true) != "$wanted" ]]; then
  cni=$(artifact "cni-${CNI_PLUGINS_VERSION}.tgz")
  calico=$(artifact "calico-${CALICO_CNI_VERSION}")
  calico_ipam=$(artifact "calico-ipam-${CALICO_CNI_VERSION}")
  # The release tarball is flat: ./bridge, ./host-local, ...
  tar -xzf "$cni" -C /opt/cni/bin --no-same-owner
  install -m 0755 "$calico" /opt/cni/bin/calico
  install -m 0755 "$calico_ipam" /opt/cni/bin/calico-ipam
  printf '%s\n' "$wanted" >"$stamp"
fi

for plugin in bridge host-local ipvlan loopback macvlan ptp calico calico-ipam; do
  [[ -x /opt/cni/bin/$plugin ]] || die "/opt/cni/bin/$plugin is missing after installing ${wanted}"
done
log "CNI plugins in /opt/cni/bin: ${wanted}"
