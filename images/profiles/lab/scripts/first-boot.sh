#!/usr/bin/env bash
# The node's side of boxcar's first-boot channel, installed into the image and run at every boot
# before sshd:
# - the host hands the node public data as SMBIOS OEM strings (type 11): `boxcar.authorized_key=<key>`
#   becomes the login user's only authorized key, so a node answers the cluster's own key from its
#   first boot and the key the image was baked with is refused;
# - the node tells the host its SSH host key on the serial console (`boxcar-host-key: <type> <key>`),
#   a channel the host trusts, so that the host can pin it instead of trusting the first connection.
# Nothing secret travels either way. Without OEM strings (a bake's own boots) nothing changes.
set -euo pipefail

install -d -m 0755 /usr/local/sbin
cat >/usr/local/sbin/boxcar-first-boot <<'SCRIPT'
#!/usr/bin/env bash
set -euo pipefail
login_user=vagrant

# Each type-11 entry: a formatted area whose length is its second byte, then NUL-separated strings.
oem_strings() {
  local entry length
  for entry in /sys/firmware/dmi/entries/11-*/raw; do
    [[ -r "$entry" ]] || continue
    length=$(od -An -tu1 -j1 -N1 "$entry" | tr -d ' ')
    tail -c +"$((length + 1))" "$entry" | tr '\0' '\n'
  done
}

key=$(oem_strings | sed -n 's/^boxcar\.authorized_key=//p' | tail -n 1)
if [[ -n "$key" ]]; then
  home=$(getent passwd "$login_user" | cut -d: -f6)
  install -d -m 0700 -o "$login_user" -g "$login_user" "$home/.ssh"
  tmp=$(mktemp "$home/.ssh/authorized_keys.XXXXXX")
  printf '%s\n' "$key" >"$tmp"
  chmod 0600 "$tmp"
  chown "$login_user:$login_user" "$tmp"
  mv -f "$tmp" "$home/.ssh/authorized_keys"
fi

if [[ -r /etc/ssh/ssh_host_ed25519_key.pub && -w /dev/ttyS0 ]]; then
  printf 'boxcar-host-key: %s\n' "$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" >/dev/ttyS0
fi
SCRIPT
chmod 0755 /usr/local/sbin/boxcar-first-boot

cat >/etc/systemd/system/boxcar-first-boot.service <<'UNIT'
[Unit]
Description=boxcar first-boot channel: cluster key from SMBIOS, SSH host key to the serial console
After=boxcar-ssh-host-keys.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/boxcar-first-boot

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable boxcar-first-boot.service
