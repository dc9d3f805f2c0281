#!/usr/bin/env bash
# Makes the lab's two container images as OCI archives, byte for byte the same from the same inputs
# (sorted tar entries, epoch mtimes, numeric owners, gzip without a name or time):
#   pause   the pause binary compiled from the Kubernetes tree (kubelet's sandbox image)
#   busybox Debian's busybox-static with every applet linked (a shell, ping, wget, httpd, nc)
#
#   oci-images.sh ARTIFACTS_DIR WORK_DIR OUT_DIR KUBERNETES_VERSION
# writes OUT_DIR/pause.oci.tar, OUT_DIR/busybox.oci.tar and OUT_DIR/refs ("<archive> <image ref>" lines).
set -euo pipefail

artifacts="${1:?artifacts dir}"
work="${2:?work dir}"
out="${3:?output dir}"
kube_version="${4:?kubernetes version}"
registry=boxcar.local

sha() { sha256sum "$1" | cut -d' ' -f1; }
deterministic_tar() { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime -cf "$1" -C "$2" .; }

# image NAME REF ROOTFS ENTRYPOINT_JSON
image() {
  local name="$1" ref="$2" rootfs="$3" entrypoint="$4"
  local layout="$work/$name.oci"
  rm -rf "$layout" && mkdir -p "$layout/blobs/sha256"
  deterministic_tar "$work/$name.layer.tar" "$rootfs"
  local diff_id; diff_id="$(sha "$work/$name.layer.tar")"
  gzip -n -9 -c "$work/$name.layer.tar" >"$work/$name.layer.tar.gz"
  local layer; layer="$(sha "$work/$name.layer.tar.gz")"
  mv "$work/$name.layer.tar.gz" "$layout/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entrypoint" "$diff_id" >"$work/config.json"
  local config; config="$(sha "$work/config.json")"
  mv "$work/config.json" "$layout/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$config" "$(stat -c %s "$layout/blobs/sha256/$config")" "$layer" "$(stat -c %s "$layout/blobs/sha256/$layer")" >"$work/manifest.json"
  local manifest; manifest="$(sha "$work/manifest.json")"
  local manifest_size; manifest_size="$(stat -c %s "$work/manifest.json")"
  mv "$work/manifest.json" "$layout/blobs/sha256/$manifest"
  # containerd names an imported image by io.containerd.image.name; other tools read ref.name.
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$ref" "$ref" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  deterministic_tar "$out/$name.oci.tar" "$layout"
  printf '%s.oci.tar %s\n' "$name" "$ref" >>"$out/refs"
  echo "oci-images: $ref -> $name.oci.tar (manifest sha256:$manifest)"
}

mkdir -p "$out"
: >"$out/refs"

pause_root="$work/pause-root"
rm -rf "$pause_root" && mkdir -p "$pause_root"
install -m 0755 "$work/pause" "$pause_root/pause"
image pause "$registry/pause:$kube_version" "$pause_root" '["/pause"]'

busybox_deb="$(ls "$artifacts"/busybox-static_*.deb)"
busybox_root="$work/busybox-root"
rm -rf "$busybox_root" "$work/busybox-deb" && mkdir -p "$busybox_root/bin" "$busybox_root/tmp" "$busybox_root/var/www" "$busybox_root/etc"
dpkg-deb --extract "$busybox_deb" "$work/busybox-deb"
install -m 0755 "$work/busybox-deb/bin/busybox" "$busybox_root/bin/busybox"
for applet in $("$busybox_root/bin/busybox" --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$busybox_root/bin/$applet"
done
chmod 1777 "$busybox_root/tmp"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$busybox_root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$busybox_root/etc/group"
busybox_version="$(dpkg-deb --field "$busybox_deb" Version | sed 's/^[0-9]*://; s/-.*//')"
image busybox "$registry/busybox:$busybox_version" "$busybox_root" '["/bin/sh"]'
