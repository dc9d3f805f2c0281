#!/usr/bin/env bash
# NIC names that follow the PCI slot on every hypervisor: enp0s3 (NAT), enp0s8 (cluster),
# enp0s9 (VPP, 0000:00:09.0). systemd's default policy prefers "slot" names, and QEMU's ACPI
# tables expose hotplug slot numbers, so the xenial cloud image calls slot 3 "ens3" there while
# VirtualBox (no slot numbers) gives "enp0s3". Dropping "slot" from the policy yields the path
# name everywhere. Only the NAT NIC is configured here; cluster:up configures enp0s8, and enp0s9
# stays unconfigured because VPP only claims an interface that is down and unrouted.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env NAT_NIC

rebuild_boot=0

# Same file name as /lib/systemd/network/99-default.link, so this one replaces it.
replace_file /etc/systemd/network/99-default.link 0644 <<'LINK'
# boxcar: path-based names (enp0sN) on QEMU and VirtualBox alike; no "slot" policy.
[Link]
NamePolicy=kernel database onboard path
MACAddressPolicy=persistent
LINK
((REPLACE_FILE_CHANGED)) && rebuild_boot=1

# net.ifnames=1 undoes a net.ifnames=0 that an image may carry; biosdevname would rename by
# BIOS data instead of the PCI path. grub uses the last occurrence of each parameter.
replace_file /etc/default/grub.d/99-boxcar-ifnames.cfg 0644 <<'GRUB'
GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX:+$GRUB_CMDLINE_LINUX }net.ifnames=1 biosdevname=0"
GRUB
((REPLACE_FILE_CHANGED)) && rebuild_boot=1

# cloud-init wrote a config for whatever name the first boot saw (ens3 under QEMU); the image's
# own file takes over, and cloud-init.sh stops cloud-init from writing it again.
rm -f /etc/network/interfaces.d/50-cloud-init.cfg

# ifupdown refuses a second "iface lo" stanza: declare lo only where nothing else does.
lo_stanza=$'auto lo\niface lo inet loopback\n'
if grep -Eqs '^[[:space:]]*iface[[:space:]]+lo[[:space:]]' /etc/network/interfaces; then
  lo_stanza=''
fi
replace_file /etc/network/interfaces.d/60-boxcar-nat.cfg 0644 <<CFG
# boxcar: the NAT NIC (PCI slot 3) takes its address, default route and DNS from DHCP.
${lo_stanza}
auto ${NAT_NIC}
iface ${NAT_NIC} inet dhcp
CFG

if ((rebuild_boot)); then
  update-initramfs -u
  update-grub
fi
log "NIC names follow PCI paths from the next boot; ${NAT_NIC} uses DHCP"
