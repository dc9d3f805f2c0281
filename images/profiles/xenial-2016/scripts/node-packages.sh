#!/usr/bin/env bash
# Host tools that kubelet, kube-proxy, docker and Felix call at run time (NODE_PACKAGES):
# the 2016 provisioning installed bridge-utils, ipset and conntrack by hand and relied on the
# image for the rest; here the list is explicit so a leaner image cannot silently lack one.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env NODE_PACKAGES

read -r -a packages <<<"$NODE_PACKAGES"
apt_install "${packages[@]}"
log "node packages installed: ${packages[*]}"
