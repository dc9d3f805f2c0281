#!/usr/bin/env bash
# The lab master's control plane binaries, from the bake's build stage "kubernetes". cluster:up writes
# their units and certificates; the Kubernetes etcd is Debian's etcd-server, already in the image.
set -euo pipefail

builds="${BOXCAR_BUILDS:?}/kubernetes"
for binary in kube-apiserver kube-controller-manager kube-scheduler; do
  install -m 0755 "$builds/bin/$binary" "/usr/local/bin/$binary"
  "/usr/local/bin/$binary" --version
done
