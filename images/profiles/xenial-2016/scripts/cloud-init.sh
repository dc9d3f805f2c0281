#!/usr/bin/env bash
# cloud-init serves only the cloud image's first boot (the builder's NoCloud seed lets the builder
# log in). Boxes boot without a datasource under VirtualBox, libvirt and QEMU, where it would wait
# for metadata and rewrite the network configuration that nic-names.sh owns, so it is switched off.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"

if [[ ! -d /etc/cloud ]]; then
  log "no cloud-init in this image"
  exit 0
fi

# Belt and braces: the flag file needs cloud-init >= 0.7.9, masking works with any version,
# and the config keeps a cloud-init that is started by hand off the network files.
replace_file /etc/cloud/cloud.cfg.d/99-boxcar.cfg 0644 <<'CFG'
# boxcar: network configuration belongs to /etc/network/interfaces.d/60-boxcar-nat.cfg
network: {config: disabled}
CFG
: >/etc/cloud/cloud-init.disabled
units=()
for unit in cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service; do
  [[ -e /lib/systemd/system/$unit ]] && units+=("$unit")
done
((${#units[@]} == 0)) || systemctl mask "${units[@]}"

# The seed's user-data (and what cloud-init derived from it) must not ship in the box.
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/seed /var/lib/cloud/data
log "cloud-init disabled"
