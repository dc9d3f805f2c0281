#!/usr/bin/env bash
# Kernel settings every node needs for container networking: forwarding on, and the bridge and
# ipvlan modules loaded at boot so that a CNI ADD never waits on module loading.
set -euo pipefail

cat > /etc/sysctl.d/60-boxcar.conf <<'CONF'
net.ipv4.ip_forward = 1
net.ipv4.conf.all.rp_filter = 0
net.ipv4.conf.default.rp_filter = 0
CONF

cat > /etc/modules-load.d/boxcar.conf <<'CONF'
ipvlan
bridge
CONF
