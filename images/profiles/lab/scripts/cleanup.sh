#!/usr/bin/env bash
# Last step of every box: nothing machine-specific or secret leaves in the image. SSH host keys
# are remade on first boot (ssh-host-keys.sh), the machine-id on first boot by systemd.
set -euo pipefail

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old
rm -f /etc/ssh/ssh_host_*
find /var/log -type f -exec truncate --size 0 {} +
rm -rf /tmp/* /var/tmp/*
rm -f /root/.bash_history /home/*/.bash_history
truncate --size 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
sync
