#!/usr/bin/env bash
# The 2016 "extras" (kube-dns with cluster IP 192.168.10.240, and the kube UI) as manifests in
# EXTRAS_DIR, taken from the pinned snapshot of the seed repository rather than copied into this
# project. They are deployed on demand (kubectl create -f), never at boot.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env SEED_REF EXTRAS_DIR

stamp=$BOXCAR_STATE/kube-extras.ref
if [[ $(cat "$stamp" 2>/dev/null || true) != "$SEED_REF" ]] || ! compgen -G "$EXTRAS_DIR/*.manifest" >/dev/null; then
  tarball=$(artifact "vpp-cni-dev-env-${SEED_REF}.tar.gz")
  unpack=$(mktemp -d)
  tar -xzf "$tarball" -C "$unpack" --strip-components=1 --wildcards '*/extras/manifests/*.manifest'
  for manifest in kube-dns.manifest kube-ui.manifest; do
    [[ -s $unpack/extras/manifests/$manifest ]] || die "vpp-cni-dev-env-${SEED_REF}.tar.gz has no extras/manifests/$manifest"
  done
  install -d -m 0755 "$EXTRAS_DIR"
  install -m 0644 "$unpack"/extras/manifests/*.manifest "$EXTRAS_DIR"/
  rm -rf "$unpack"
  install -d -m 0755 "$BOXCAR_STATE"
  printf '%s\n' "$SEED_REF" >"$stamp"
fi
log "extras manifests in ${EXTRAS_DIR}"
