#!/usr/bin/env bash
# Calico's etcd: Ubuntu's etcd package (2.2.x on xenial), as in 2016. It is installed on every
# node but left disabled and empty: cluster:up writes /etc/default/etcd and enables it on the
# etcd node only.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env ETCD_CALICO_VERSION

# The package would start etcd with its default single-node configuration.
without_service_starts apt_install etcd

version=$(dpkg-query -W -f='${Version}' etcd)
[[ $version == "${ETCD_CALICO_VERSION}"* ]] ||
  die "etcd package ${version} installed, the profile expects ${ETCD_CALICO_VERSION}: the mirror is not xenial's archive"

systemctl disable etcd.service >/dev/null 2>&1 || true
systemctl stop etcd.service >/dev/null 2>&1 || true
# A member directory from any earlier start would pin a member name and peer URLs that the
# etcd node's configuration at cluster:up does not match.
if [[ -d /var/lib/etcd ]]; then
  find /var/lib/etcd -mindepth 1 -delete
fi
command -v etcdctl >/dev/null || die "the etcd package installed no etcdctl"
log "etcd ${version} installed, disabled"
