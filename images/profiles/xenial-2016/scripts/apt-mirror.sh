#!/usr/bin/env bash
# Points apt at the Ubuntu archive mirror the builder provides in BOXCAR_APT_MIRROR, for this
# layer's bake only (cleanup.sh puts the image's own sources back).
#
# Why a mirror and not debs in the artifact lock: the node packages, VPP's `make install-dep`
# and the Felix build need the dependency closure of some two hundred xenial packages, which
# cannot be resolved without a xenial archive, so listing them by hand would be guesswork.
# The integrity chain stays real: apt checks every deb against the Packages index, and the
# index against the Release file signed with the Ubuntu archive key (ubuntu-keyring is in the
# image). xenial, xenial-updates and xenial-security stopped changing when 16.04 left standard
# support, so one mirror (a local copy or an apt cache fed from archive.ubuntu.com) gives
# the same packages every time. This is the only network access a bake makes.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env UBUNTU_CODENAME

mirror=${BOXCAR_APT_MIRROR:-}
if [[ -z $mirror ]]; then
  die "BOXCAR_APT_MIRROR is not set. This layer installs Ubuntu ${UBUNTU_CODENAME} packages and the VM has no internet access: give the builder an Ubuntu archive mirror the VM can reach, e.g. BOXCAR_APT_MIRROR=http://10.0.2.2:3142/ubuntu (an apt cache on the build host, seen through QEMU user networking)"
fi
[[ $mirror =~ ^https?://[^[:space:]]+$ ]] || die "BOXCAR_APT_MIRROR must be an http:// or https:// URL, got '$mirror'"
mirror=${mirror%/}

# The first run of a layer keeps the image's list; a re-run must not save the mirror list instead.
if [[ ! -e /etc/apt/sources.list.boxcar-orig ]]; then
  cp -p /etc/apt/sources.list /etc/apt/sources.list.boxcar-orig
fi
replace_file /etc/apt/sources.list 0644 <<LIST
# boxcar bake: Ubuntu ${UBUNTU_CODENAME} from ${mirror}; cleanup.sh restores the image's list.
deb ${mirror} ${UBUNTU_CODENAME} main universe
deb ${mirror} ${UBUNTU_CODENAME}-updates main universe
deb ${mirror} ${UBUNTU_CODENAME}-security main universe
LIST

# Recommends would pull whatever the archive recommends today into the image; sources.list.d
# entries (if an image has any) point at the internet.
install -d -m 0755 "$BOXCAR_STATE/apt-sources.d"
replace_file /etc/apt/apt.conf.d/90boxcar-bake 0644 <<CONF
// boxcar bake settings, removed by cleanup.sh
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dir::Etc::SourceParts "${BOXCAR_STATE}/apt-sources.d";
CONF

apt-get update
log "apt uses ${mirror} (${UBUNTU_CODENAME}, -updates, -security; main, universe)"
