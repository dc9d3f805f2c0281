#!/usr/bin/env bash
# VPP's configuration for the box: DPDK takes the third NIC (e1000 at VPP_PCI_ADDRESS, which VPP
# names GigabitEthernet0/9/0) and the kernel reserves VPP_HUGEPAGES 2 MiB pages at boot.
# VPP only claims a NIC that is down and unrouted; nic-names.sh leaves that NIC unconfigured.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env VPP_PCI_ADDRESS VPP_HUGEPAGES

is_installed vpp || die "vpp is not installed: vpp-build.sh runs before this script"
[[ $VPP_PCI_ADDRESS =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]] ||
  die "VPP_PCI_ADDRESS must look like 0000:00:09.0, got '$VPP_PCI_ADDRESS'"
[[ $VPP_HUGEPAGES =~ ^[1-9][0-9]*$ ]] || die "VPP_HUGEPAGES must be a positive integer, got '$VPP_HUGEPAGES'"

# The package's startup.conf plus the dpdk section.
replace_file /etc/vpp/startup.conf 0644 <<CONF
unix {
  nodaemon
  log /tmp/vpp.log
  full-coredump
}

api-trace {
  on
}

api-segment {
  gid vpp
}

dpdk {
  dev ${VPP_PCI_ADDRESS}
}
CONF

# Sorted after the package's 80-vpp.conf, so these win; same rules as its comments:
# max_map_count >= 2 * nr_hugepages, shmmax >= the hugepages' total size.
map_count=$((2 * VPP_HUGEPAGES > 3096 ? 2 * VPP_HUGEPAGES : 3096))
shmmax=$((VPP_HUGEPAGES * 2 * 1024 * 1024))
replace_file /etc/sysctl.d/81-boxcar-vpp-hugepages.conf 0644 <<SYSCTL
# boxcar: hugepages for VPP (profile vpp.hugepages), reserved at boot
vm.nr_hugepages=${VPP_HUGEPAGES}
vm.max_map_count=${map_count}
kernel.shmmax=${shmmax}
SYSCTL

systemctl enable vpp.service
log "VPP takes ${VPP_PCI_ADDRESS}; ${VPP_HUGEPAGES} hugepages from the next boot"
