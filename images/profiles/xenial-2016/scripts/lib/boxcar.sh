# Helpers for the xenial-2016 layer scripts. Sourced, never run: every layer uploads
# scripts/lib/ to /tmp/boxcar/lib/ (layers.json "files"), and cleanup.sh removes it.
# shellcheck shell=bash
# shellcheck disable=SC2034 # BOXCAR_STATE and REPLACE_FILE_CHANGED are read by the sourcing scripts

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
# `sudo -E` keeps the login user's HOME on xenial: caches and per-user config (pip, ccache,
# easy_install) must land in root's home, where cleanup.sh finds them.
export HOME=/root

# Small state that must survive between layers (package snapshots, install records).
BOXCAR_STATE=/var/lib/boxcar

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# require_env NAME...: each NAME must be set, by the layer's "env" in layers.json or, for
# BOXCAR_*, by the builder.
require_env() {
  local name origin
  for name in "$@"; do
    origin="this layer's \"env\" in layers.json"
    [[ $name == BOXCAR_* ]] && origin="the builder"
    [[ -n ${!name:-} ]] || die "$name is not set: it comes from ${origin}"
  done
}

# artifact FILE: prints the path of an uploaded lock artifact. Scripts never download:
# a missing file means the layer's "artifacts" list lacks its lock id.
artifact() {
  require_env BOXCAR_ARTIFACTS
  local path="$BOXCAR_ARTIFACTS/$1"
  [[ -s $path ]] || die "artifact $1 is missing from $BOXCAR_ARTIFACTS: add its lock id to this layer's \"artifacts\""
  printf '%s\n' "$path"
}

# replace_file DEST MODE < content: writes DEST atomically and sets REPLACE_FILE_CHANGED
# to 1 when its content or mode changed, 0 when it was already up to date.
REPLACE_FILE_CHANGED=0
replace_file() {
  local dest=$1 mode=$2 tmp
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp "$dest.boxcar.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -e $dest ]] && cmp -s "$tmp" "$dest" && [[ $(stat -c %a "$dest") == "$(stat -c %a "$tmp")" ]]; then
    rm -f "$tmp"
    REPLACE_FILE_CHANGED=0
  else
    mv -f "$tmp" "$dest"
    REPLACE_FILE_CHANGED=1
  fi
}

is_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == 'install ok installed' ]]
}

# apt_install PKG...: installs from the mirror apt-mirror.sh configured; a no-op when all
# are installed, so a re-run needs no mirror.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null ||
    die "no apt package lists: run scripts/apt-mirror.sh earlier in this layer (needed for: ${missing[*]})"
  apt-get install -y --no-install-recommends "${missing[@]}"
}

# without_service_starts CMD...: runs CMD with a policy-rc.d that tells maintainer scripts not to
# start services (packages would start them with their default configuration mid-bake).
# An existing policy is left alone.
without_service_starts() {
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    "$@"
    return
  fi
  # The trap also covers a die() inside CMD: a policy left behind would stop every service.
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  local status=0
  "$@" || status=$?
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
  return "$status"
}

installed_packages() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | sort -u
}

# snapshot_packages NAME: records the installed package set once, before a build
# toolchain is installed, so purge_packages_since can take exactly that toolchain away.
snapshot_packages() {
  local file="$BOXCAR_STATE/$1.packages"
  [[ -e $file ]] && return 0
  mkdir -p "$BOXCAR_STATE"
  installed_packages >"$file.tmp"
  mv -f "$file.tmp" "$file"
}

# purge_packages_since NAME [KEEP_ERE]: marks every package installed after the snapshot
# (except those matching KEEP_ERE) as automatically installed and autoremoves: apt keeps
# whatever a manually installed package still depends on, and purges the rest.
purge_packages_since() {
  local file="$BOXCAR_STATE/$1.packages" keep=${2:-'^$'} added
  [[ -e $file ]] || die "no package snapshot $file: snapshot_packages $1 must run before the toolchain is installed"
  added=$(comm -13 "$file" <(installed_packages) | grep -Ev "$keep" || true)
  if [[ -n $added ]]; then
    # shellcheck disable=SC2086 # one package name per word
    apt-mark auto $added >/dev/null
  fi
  apt-get -y autoremove --purge
}
