#!/usr/bin/env bash
# VPP ${VPP_VERSION} built from the locked source tarball the way 2016 did it (make install-dep,
# make bootstrap, make pkg-deb, dpkg -i), plus the igb_uio module and the Python API (vpp_papi).
# Then the build toolchain and the build tree go: only the runtime debs, the module and the
# binding stay in the image. This is the step that cost every 2016 `vagrant up` tens of minutes.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env VPP_VERSION DPDK_VERSION

kernel=$(uname -r)
done_mark=$BOXCAR_STATE/vpp-${VPP_VERSION}.installed
build=/var/tmp/boxcar-vpp-build
runtime_debs=(vpp vpp-lib vpp-plugins)

vpp_ready() {
  is_installed vpp &&
    modinfo -k "$kernel" uio >/dev/null 2>&1 &&
    modinfo -k "$kernel" igb_uio >/dev/null 2>&1 &&
    python -c 'import vpp_papi' 2>/dev/null
}
if [[ -e $done_mark ]] && vpp_ready; then
  log "VPP ${VPP_VERSION} already installed"
  exit 0
fi

source_tarball=$(artifact "vpp-${VPP_VERSION}.tar.gz")
dpdk_tarball=$(artifact "dpdk-${DPDK_VERSION}.tar.xz")

# Kept: vpp_papi runs on Python 2.7 and declares a pkg_resources namespace; install-dep
# calls sudo.
apt_install python python-pkg-resources sudo
# igb_uio needs the kernel's uio module, which some xenial kernel flavours only ship in
# linux-image-extra (the 2016 provisioning installed that package too).
if ! modinfo -k "$kernel" uio >/dev/null 2>&1; then
  apt_install "linux-image-extra-${kernel}"
fi
snapshot_packages vpp-build
# git: VPP's version and changelog scripts; the headers: dkms builds igb_uio for this kernel.
apt_install git make "linux-headers-${kernel}"

rm -rf "$build"
mkdir -p "$build"
tar -xzf "$source_tarball" -C "$build" --strip-components=1 --no-same-owner
cd "$build"

# build-root/scripts/version and generate-deb-changelog read `git describe` and the release
# tags; a source tarball has no .git, so the tree becomes a one-commit repository carrying the
# upstream tag name (the package version comes out as upstream's, e.g. 16.09).
if [[ ! -d .git ]]; then
  git init -q
  git add -A
  git -c user.name=boxcar -c user.email=boxcar@localhost commit -q -m "VPP ${VPP_VERSION} source tarball"
  git -c user.name=boxcar -c user.email=boxcar@localhost tag -a "$VPP_VERSION" -m "Version ${VPP_VERSION#v}"
fi

# dpdk/Makefile downloads dpdk-<version>.tar.xz unless it is already next to the Makefile,
# and checks it against the MD5 sum VPP pins for that DPDK version.
cp "$dpdk_tarball" "dpdk/dpdk-${DPDK_VERSION}.tar.xz"

make UNATTENDED=y install-dep
make V=0 bootstrap
make V=0 pkg-deb

debs=()
for package in "${runtime_debs[@]}" vpp-dpdk-dkms; do
  matches=(build-root/"${package}"_*.deb)
  [[ -f ${matches[0]} ]] || die "make pkg-deb produced no ${package}_*.deb"
  debs+=("${matches[0]}")
done
# Not started here: the bake VM has no VPP NIC, and the box starts VPP at boot.
without_service_starts dpkg -i "${debs[@]}"

# vpp-dpdk-dkms built igb_uio through dkms, which needs the compiler at every kernel change.
# The box never changes its kernel, so the built module is kept outside the package and the
# package (with dkms and the compiler it depends on) goes with the rest of the toolchain.
built_module=$(find "/lib/modules/${kernel}/updates" -name igb_uio.ko -print -quit 2>/dev/null || true)
[[ -n $built_module ]] || die "dkms did not build igb_uio for kernel ${kernel}"
install -D -m 0644 "$built_module" "/lib/modules/${kernel}/extra/igb_uio.ko"
dpkg --purge vpp-dpdk-dkms
depmod -a "$kernel"

# The Python binding: setup.py links against libpneum in the debug build tree, which pkg-deb
# does not build, so the release tree's library directory is passed instead.
pneum=$(find build-root/install-vpp-native -name libpneum.so -print -quit 2>/dev/null || true)
[[ -n $pneum ]] || die "the release build has no libpneum.so"
[[ -f vpp-api/python/vpp_papi/vpp_papi.py ]] || die "the build did not generate vpp-api/python/vpp_papi/vpp_papi.py"
(cd vpp-api/python && python setup.py build_ext -L "$build/$(dirname "$pneum")" install)

cd /
# Everything installed since the snapshot except the runtime debs becomes removable; apt keeps
# what those debs depend on.
keep_pattern=$(
  IFS='|'
  printf '^(%s)$' "${runtime_debs[*]}"
)
purge_packages_since vpp-build "$keep_pattern"
rm -rf "$build" /root/.ccache /root/Downloads

vpp_ready || die "VPP, igb_uio or vpp_papi is unusable after removing the toolchain"
: >"$done_mark"
log "VPP ${VPP_VERSION} installed ($(dpkg-query -W -f='${Version}' vpp)); toolchain and build tree removed"
