#!/usr/bin/env bash
# Installs the layer's Debian packages from the uploaded artifacts: the guest has no network, so
# the layer's lock lists every dependency the base lacks. dpkg takes the whole set at once so that
# packages depending on each other configure in the right order.
set -euo pipefail

shopt -s nullglob
debs=("${BOXCAR_ARTIFACTS:?}"/*.deb)
if [ "${#debs[@]}" -eq 0 ]; then
  echo "install-debs: no .deb in ${BOXCAR_ARTIFACTS}" >&2
  exit 1
fi

missing=()
for deb in "${debs[@]}"; do
  name=$(dpkg-deb --field "$deb" Package)
  version=$(dpkg-deb --field "$deb" Version)
  installed=$(dpkg-query --show --showformat='${Version} ${db:Status-Status}' "$name" 2>/dev/null || true)
  if [ "$installed" != "$version installed" ]; then
    missing+=("$deb")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-debs: all ${#debs[@]} packages already installed"
  exit 0
fi
# Services that packages would start now belong to cluster:up, not to the bake.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive dpkg --install "${missing[@]}"
echo "install-debs: installed ${#missing[@]} of ${#debs[@]} packages"
