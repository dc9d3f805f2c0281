#!/usr/bin/env bash
# Last script of every layer: leaves nothing of the bake in the image. Restores the image's own
# apt sources, drops package caches and lists, uploaded artifacts and /tmp/boxcar, logs, shell
# history, DHCP leases and the machine id (regenerated at first boot, so clones of one box get
# different ids). The vagrant user's bootstrap key stays: cluster:up replaces it.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"

# apt: undo apt-mirror.sh.
if [[ -e /etc/apt/sources.list.boxcar-orig ]]; then
  mv -f /etc/apt/sources.list.boxcar-orig /etc/apt/sources.list
fi
rm -f /etc/apt/apt.conf.d/90boxcar-bake
apt-get clean
find /var/lib/apt/lists -mindepth 1 -maxdepth 1 ! -name partial ! -name lock -exec rm -rf {} +

# Uploads of this layer (artifacts, scripts library, patches, bootstrap key file) and build caches.
rm -rf /var/cache/boxcar /tmp/boxcar
rm -rf /root/.cache /root/.ccache /root/Downloads /root/.pydistutils.cfg

# Logs: truncate rather than delete, so services keep writing to files they opened; the
# journal is rotated and vacuumed by journald itself (truncating its open files corrupts them).
find /var/log -path /var/log/journal -prune -o -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -exec rm -f {} +
find /var/log -path /var/log/journal -prune -o -type f -exec truncate -s 0 {} +
if command -v journalctl >/dev/null; then
  journalctl --rotate >/dev/null 2>&1 || true
  journalctl --vacuum-time=1s >/dev/null 2>&1 || true
fi

rm -f /root/.bash_history /home/*/.bash_history /root/.python_history /home/*/.python_history
rm -f /var/lib/dhcp/*.leases
# The SSH host keys are zeroed and removed by the template's last step for every layer (libs/packer
# template.ts); every clone makes its own on first boot (ssh-host-keys.sh).

# An empty machine-id makes systemd generate a fresh one at boot; dbus reads the same file.
: >/etc/machine-id
if [[ -e /var/lib/dbus/machine-id || -L /var/lib/dbus/machine-id ]]; then
  ln -sfn /etc/machine-id /var/lib/dbus/machine-id
fi

sync
log "image cleaned"
