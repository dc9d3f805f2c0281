#!/usr/bin/env bash
# Puts the box role's kubelet (and kubectl) at /usr/bin, where the 2016 units call them: the
# master ran kubelet v1.3.0, the workers the version the seed names (v1.3.0-beta.2). Both
# versions come from the k8s-node layer; this layer only chooses.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env KUBELET_VERSION KUBECTL_VERSION

for pair in "kubelet:$KUBELET_VERSION" "kubectl:$KUBECTL_VERSION"; do
  name=${pair%%:*}
  target=/opt/kubernetes/${pair#*:}/bin/$name
  [[ -x $target ]] || die "$target is missing: the k8s-node layer installs ${pair#*:}"
  ln -sfn "$target" "/usr/bin/$name"
done
log "kubelet ${KUBELET_VERSION}, kubectl ${KUBECTL_VERSION} linked into /usr/bin"
