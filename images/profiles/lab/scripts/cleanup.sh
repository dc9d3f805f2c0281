#!/usr/bin/env bash
# Last step of every box: nothing machine-specific or secret leaves in the image. The machine-id is
# remade on first boot by systemd; the SSH host keys are zeroed and removed by the template's last
# step for every layer (libs/packer template.ts) and remade on first boot.
set -euo pipefail

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old
find /var/log -type f -exec truncate --size 0 {} +
rm -rf /tmp/* /var/tmp/*
rm -f /root/.bash_history /home/*/.bash_history
truncate --size 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
sync
