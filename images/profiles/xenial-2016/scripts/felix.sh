#!/usr/bin/env bash
# Calico Felix ${FELIX_VERSION}: the fork's plugable-devices-fib2 branch (with the "vpp" devices
# plugin) from the locked tarball, every patches/felix/*.patch applied in name order, the Python
# dependencies from the lock (pip never sees an index), `setup.py install`, and the build
# dependencies removed again. Felix is started by hand, as in 2016; nothing is enabled.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env FELIX_VERSION FELIX_PATCH_DIR BOXCAR_ARTIFACTS

build=/var/tmp/boxcar-felix-build
done_mark=$BOXCAR_STATE/felix-${FELIX_VERSION}.installed
shopt -s nullglob
patches=("$FELIX_PATCH_DIR"/*.patch) # glob order is name order under LC_ALL=C
# The mark records which patches went in, so a changed patch set installs again.
patch_digest=$(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)

felix_ready() {
  command -v calico-felix >/dev/null && python - <<'PY'
import pkg_resources
pkg_resources.require('calico')  # every install_requires entry is installed
plugins = set(ep.name for ep in pkg_resources.iter_entry_points('calico.felix.devices'))
assert 'vpp' in plugins, 'no vpp devices plugin: %s' % sorted(plugins)
import calico.felix.vppdevices
PY
}
if [[ $(cat "$done_mark" 2>/dev/null || true) == "$patch_digest" ]] && felix_ready; then
  log "Felix ${FELIX_VERSION} already installed"
  exit 0
fi

tarball=$(artifact "calico-felix-${FELIX_VERSION}.tar.gz")

# Kept: the interpreter and pip, libffi for cffi, and the ipset/conntrack tools Felix runs.
apt_install python python-pip python-setuptools python-pkg-resources libffi6 ipset conntrack iptables
snapshot_packages felix-build
apt_install build-essential python-dev libffi-dev pkg-config

rm -rf "$build"
mkdir -p "$build"
tar -xzf "$tarball" -C "$build" --strip-components=1 --no-same-owner

for patch_file in "${patches[@]}"; do
  if patch -d "$build" -p1 -R --dry-run --silent <"$patch_file" >/dev/null 2>&1; then
    log "already applied: ${patch_file##*/}"
    continue
  fi
  patch -d "$build" -p1 --forward <"$patch_file" ||
    die "${patch_file##*/} does not apply to Felix ${FELIX_VERSION}"
done

export PIP_NO_INDEX=1 PIP_FIND_LINKS=$BOXCAR_ARTIFACTS PIP_DISABLE_PIP_VERSION_CHECK=1
# setup_requires (posix-spawn builds with cffi) goes through easy_install, which ignores pip's
# settings: it gets the artifacts as its only source too.
replace_file /root/.pydistutils.cfg 0644 <<CFG
[easy_install]
index_url = file://${BOXCAR_ARTIFACTS}/no-index/
find_links = ${BOXCAR_ARTIFACTS}
CFG
pip install pycparser cffi
pip install -r "$build/felix_requirements.txt"
# Externally managed: setuptools installs Felix alone and leaves the dependencies to pip above
# (a plain `setup.py install` would try easy_install for anything it finds missing).
(cd "$build" && python setup.py install --single-version-externally-managed --record "$BOXCAR_STATE/felix-files.txt")

purge_packages_since felix-build
rm -rf "$build" /root/.pydistutils.cfg /root/.cache/pip

felix_ready || die "Felix ${FELIX_VERSION} is unusable after removing the build dependencies"
install -d -m 0755 "$BOXCAR_STATE"
printf '%s\n' "$patch_digest" >"$done_mark"
log "Felix ${FELIX_VERSION} installed with ${#patches[@]} patch(es)"
