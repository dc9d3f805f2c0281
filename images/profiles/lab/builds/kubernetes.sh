#!/usr/bin/env bash
# Compiles the Kubernetes server binaries and the pause binary from Debian's pinned source tarball, in
# the build root (a chroot of pinned Debian packages, no network), and makes the two container images
# the lab needs as OCI archives. Runs inside the chroot as root.
#
# In:  $BOXCAR_ARTIFACTS (the source tarball, the toolchain and image debs), $BOXCAR_PATCHES (*.patch,
#      applied in name order with patch -p1; a patch may read $BOXCAR_ARTIFACTS), $BOXCAR_VERSION
#      (the release the binaries report; a patch may add a mark to it in component-base's base.go),
#      $BOXCAR_CACHE (optional: Go's build cache, kept between builds: content-addressed, so a patch
#      recompiles only the packages it touches).
# Out: $BOXCAR_OUT/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy},
#      $BOXCAR_OUT/images/{pause,busybox}.oci.tar, $BOXCAR_OUT/images/refs (archive name, image ref)
set -euo pipefail

artifacts="${BOXCAR_ARTIFACTS:?}"
patches="${BOXCAR_PATCHES:?}"
out="${BOXCAR_OUT:?}"
version="${BOXCAR_VERSION:?}"
jobs="${BOXCAR_JOBS:-$(nproc)}"
export GOPATH=/build/gopath GOCACHE="${BOXCAR_CACHE:-/build}/go-build" GOFLAGS=-trimpath GO111MODULE=off GOPROXY=off CGO_ENABLED=0 HOME=/build
# Every file the build writes gets this time, so the same inputs give the same archives.
export SOURCE_DATE_EPOCH=0

started=$SECONDS
step() { printf '[kubernetes-build] %4ds %s\n' "$((SECONDS - started))" "$*"; }

# A -trimpath binary does not know GOROOT, and openapi-gen (one) then cannot find the standard library.
GOROOT="$(go env GOROOT)"
export GOROOT
step "toolchain: $(go version)"
tree="$GOPATH/src/k8s.io/kubernetes"
rm -rf "$tree" && mkdir -p "$tree"
step "unpacking $(basename "$(ls "$artifacts"/kubernetes_*.orig.tar.gz)")"
tar -xzf "$artifacts"/kubernetes_*.orig.tar.gz -C "$tree" --strip-components=1

# In name order, diffs (NAME.patch) and scripts (NAME.sh, for changes a diff cannot carry, such as
# replacing a vendored package with Debian's newer copy of it) alike.
shopt -s nullglob
for patch in "$patches"/*; do
  case "$patch" in
    *.patch) step "patch $(basename "$patch")"; (cd "$tree" && patch -p1 --forward --batch --quiet <"$patch") ;;
    *.sh) step "patch script $(basename "$patch")"; (cd "$tree" && BOXCAR_ARTIFACTS="$artifacts" bash "$patch") ;;
    *) echo "kubernetes-build: $(basename "$patch") in the patch folder is neither NAME.patch nor NAME.sh" >&2; exit 1 ;;
  esac
done

cd "$tree"
# The version: the release, with the mark a patch may have stamped into the tree's default.
stamped="$(sed -n 's/^\tgitVersion *= *"\(.*\)"$/\1/p' staging/src/k8s.io/component-base/version/base.go)"
case "$stamped" in
  "$version" | "$version"[-+]*) version="$stamped" ;;
  v0.0.0-master*) ;;
  *) echo "kubernetes-build: a patch stamps version '$stamped', which is not release $version" >&2; exit 1 ;;
esac
step "version $version"
ldflags="-s -w -buildid= \
 -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=$version \
 -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitMinor=20 \
 -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitTreeState=archive \
 -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.gitVersion=$version"

# The tarball lacks the generated OpenAPI definitions kube-apiserver needs.
if [[ ! -f pkg/generated/openapi/zz_generated.openapi.go ]]; then
  step "openapi-gen"
  go build -o /build/openapi-gen ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  # The packages upstream's build/root/Makefile.generated_files hands to openapi-gen, found the same
  # way: Go files of the tree (staging named as vendor, third-party vendor/ left out) with a
  # +k8s:openapi-gen tag, less two examples.
  find -H . \( -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) \) -type f -name '*.go' |
    sed 's|^\./staging/src|vendor|; s|^\./||' | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
    xargs grep -l '^// *+k8s:openapi-gen=' | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' >/build/openapi-packages
  /build/openapi-gen --input-dirs "$(paste -sd, /build/openapi-packages)" --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --report-filename /build/openapi-violations.txt
fi

mkdir -p "$out/bin" "$out/images"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet; do
  t0=$SECONDS
  go build -p "$jobs" -tags selinux,notest -ldflags "$ldflags" -o "$out/bin/$cmd" "./cmd/$cmd"
  step "built $cmd in $((SECONDS - t0))s ($(stat -c %s "$out/bin/$cmd") bytes)"
done

step "pause"
mkdir -p /build/images
gcc -Os -static -Wall -Werror -o /build/images/pause build/pause/linux/pause.c
strip /build/images/pause
step "images"
# The pause image is tagged with the release (the profile names it so), whatever mark a patch stamped.
bash /build/scripts/oci-images.sh "$artifacts" /build/images "$out/images" "${BOXCAR_VERSION}"
step "done"
