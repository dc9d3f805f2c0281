#!/usr/bin/env bash
# calicoctl ${CALICOCTL_VERSION} at /usr/local/bin/calicoctl, where the 2016 provisioning put it.
# 2016 fetched an unversioned "latest" build that no longer exists; this is the release binary.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env CALICOCTL_VERSION

source_file=$(artifact "calicoctl-${CALICOCTL_VERSION}")
if ! cmp -s "$source_file" /usr/local/bin/calicoctl; then
  # A release asset, not an HTML error page saved under its name.
  [[ $(head -c 4 "$source_file" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] ||
    die "calicoctl-${CALICOCTL_VERSION} is not an ELF executable"
  install -m 0755 "$source_file" /usr/local/bin/calicoctl
fi
log "calicoctl ${CALICOCTL_VERSION} installed"
