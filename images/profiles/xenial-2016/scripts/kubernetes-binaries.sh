#!/usr/bin/env bash
# kubelet and kubectl for the master version, kubelet for the worker version, and hyperkube,
# side by side under /opt/kubernetes/<version>/bin: both box roles come from this layer, and
# kubelet-role.sh links the role's version into /usr/bin, where the 2016 units expect it.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env KUBERNETES_MASTER_VERSION KUBERNETES_WORKER_VERSION HYPERKUBE_VERSION

# install_binary NAME VERSION VERSION_COMMAND...: the artifact NAME-VERSION becomes
# /opt/kubernetes/VERSION/bin/NAME and must report VERSION, which catches a mislabelled file.
install_binary() {
  local name=$1 version=$2 dest source reported
  shift 2
  dest=/opt/kubernetes/$version/bin/$name
  if [[ ! -x $dest ]]; then
    source=$(artifact "$name-$version")
    install -D -m 0755 "$source" "$dest"
  fi
  reported=$("$dest" "$@" 2>&1 || true)
  # The whole version, so that v1.3.0 does not match a v1.3.0-beta.2 binary.
  grep -Eq "(^|[^[:alnum:].+-])${version//./\\.}([^[:alnum:].+-]|\$)" <<<"$reported" ||
    die "$dest reports '$reported', expected $version"
}

install_binary kubelet "$KUBERNETES_MASTER_VERSION" --version
install_binary kubectl "$KUBERNETES_MASTER_VERSION" version --client
install_binary kubelet "$KUBERNETES_WORKER_VERSION" --version
install_binary hyperkube "$HYPERKUBE_VERSION" apiserver --version
ln -sfn "/opt/kubernetes/$HYPERKUBE_VERSION/bin/hyperkube" /usr/local/bin/hyperkube
log "kubelet $KUBERNETES_MASTER_VERSION and $KUBERNETES_WORKER_VERSION, kubectl $KUBERNETES_MASTER_VERSION, hyperkube $HYPERKUBE_VERSION installed"
