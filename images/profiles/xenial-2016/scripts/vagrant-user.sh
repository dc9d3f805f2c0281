#!/usr/bin/env bash
# The Vagrant-style login: user vagrant, passwordless sudo, and the bootstrap public key the
# builder uploaded. The bootstrap key stays in the box (cluster:up replaces it with a per-cluster
# key); it is removed from every other account, because a builder seed may have given it to the
# cloud image's default user too, and cluster:up only cleans up vagrant.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env BOOTSTRAP_PUBKEY

if ! id -u vagrant >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --user-group vagrant
fi
# A locked password: SSH keys only.
usermod --lock vagrant

replace_file /etc/sudoers.d/vagrant 0440 <<'SUDO'
vagrant ALL=(ALL) NOPASSWD:ALL
Defaults:vagrant !requiretty
SUDO
visudo -cf /etc/sudoers.d/vagrant >/dev/null || die "/etc/sudoers.d/vagrant does not parse"

auth=/home/vagrant/.ssh/authorized_keys
if [[ -s $BOOTSTRAP_PUBKEY ]]; then
  ssh-keygen -l -f "$BOOTSTRAP_PUBKEY" >/dev/null 2>&1 ||
    die "$BOOTSTRAP_PUBKEY is not an SSH public key"
  (($(grep -c . "$BOOTSTRAP_PUBKEY") == 1)) || die "$BOOTSTRAP_PUBKEY must hold exactly one key"
  install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
  # Compare the key fields (type and base64), not the comment.
  key=$(awk 'NF >= 2 { print $1, $2; exit }' "$BOOTSTRAP_PUBKEY")
  if ! grep -qsF "$key" "$auth"; then
    cat "$BOOTSTRAP_PUBKEY" >>"$auth"
  fi
  chown vagrant:vagrant "$auth"
  chmod 0600 "$auth"
  for other in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do
    [[ -f $other && $other != "$auth" ]] || continue
    if grep -qF "$key" "$other"; then
      grep -vF "$key" "$other" >"$other.boxcar" || true
      chmod --reference="$other" "$other.boxcar"
      chown --reference="$other" "$other.boxcar"
      mv -f "$other.boxcar" "$other"
      log "removed the bootstrap key from $other"
    fi
  done
elif [[ ! -s $auth ]]; then
  die "$BOOTSTRAP_PUBKEY is missing and vagrant has no authorized key: the builder uploads the bootstrap public key there"
fi

# Reverse DNS lookups of the client stall every login on a NAT or internal network.
# xenial's OpenSSH 7.2 has no sshd_config.d: the main file is edited (first occurrence wins,
# so the line goes on top, before any Match block) and checked before it replaces the old one.
if ! grep -Eq '^UseDNS[[:space:]]+no[[:space:]]*$' /etc/ssh/sshd_config; then
  tmp=$(mktemp /etc/ssh/sshd_config.boxcar.XXXXXX)
  { printf 'UseDNS no\n'; grep -Ev '^#?[[:space:]]*UseDNS[[:space:]]' /etc/ssh/sshd_config || true; } >"$tmp"
  chmod 0644 "$tmp"
  sshd -t -f "$tmp" || { rm -f "$tmp"; die "sshd_config would not parse with UseDNS no"; }
  mv -f "$tmp" /etc/ssh/sshd_config
fi
log "user vagrant ready (passwordless sudo, bootstrap key)"
