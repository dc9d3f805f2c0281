#!/usr/bin/env bash
# Loads container images into docker from `docker save` tarballs in the artifact lock, so that
# pods start without a registry (the 2016 gcr.io/google_containers paths are gone).
# CONTAINER_IMAGES holds space-separated FILE=IMAGE:TAG pairs; each tarball must carry that tag.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env CONTAINER_IMAGES

systemctl is-active --quiet docker.service || systemctl start docker.service

for pair in $CONTAINER_IMAGES; do
  file=${pair%%=*}
  image=${pair#*=}
  [[ $file != "$pair" && -n $file && -n $image ]] || die "CONTAINER_IMAGES entry '$pair' is not FILE=IMAGE:TAG"
  if docker inspect --type=image "$image" >/dev/null 2>&1; then
    continue
  fi
  tarball=$(artifact "$file")
  docker load -i "$tarball"
  docker inspect --type=image "$image" >/dev/null 2>&1 ||
    die "$file loaded, but docker has no $image: the tarball must be saved with that repository and tag"
  log "loaded $image"
done
