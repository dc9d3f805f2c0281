#!/usr/bin/env bash
# Every clone of a box must get its own SSH host keys: the image ships none (cleanup.sh removes
# them) and this unit makes them on first boot, before sshd starts.
set -euo pipefail

cat > /etc/systemd/system/boxcar-ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
UNIT
systemctl enable boxcar-ssh-host-keys.service
