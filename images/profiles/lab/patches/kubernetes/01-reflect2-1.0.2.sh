#!/usr/bin/env bash
# Replaces the vendored github.com/modern-go/reflect2 1.0.1 with 1.0.2 from Debian's
# golang-github-modern-go-reflect2-dev: 1.0.1 reads Go's map internals in a way Go 1.18+ changed, and
# kube-apiserver built with bookworm's Go 1.19 dies on its first GET ("fatal error: fault ...
# reflect2.(*UnsafeMapType).UnsafeIterate"). Runs in the source tree; the .deb is a pinned artifact.
set -euo pipefail

deb="$(ls "${BOXCAR_ARTIFACTS:?}"/golang-github-modern-go-reflect2-dev_1.0.2-*_all.deb)"
unpacked="$(mktemp -d)"
dpkg-deb --extract "$deb" "$unpacked"
source="$unpacked/usr/share/gocode/src/github.com/modern-go/reflect2"
[[ -f "$source/reflect2.go" ]] || { echo "reflect2 patch: $deb has no reflect2.go" >&2; exit 1; }
rm -rf vendor/github.com/modern-go/reflect2
mkdir -p vendor/github.com/modern-go/reflect2
# Only the package's Go sources: its tests would not build in GOPATH mode without their dependencies.
find "$source" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} vendor/github.com/modern-go/reflect2/ \;
rm -rf "$unpacked"
echo "reflect2 patch: vendor/github.com/modern-go/reflect2 is now $(dpkg-deb --field "$deb" Version)"
