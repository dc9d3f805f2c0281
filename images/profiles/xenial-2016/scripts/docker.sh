#!/usr/bin/env bash
# Docker ${DOCKER_VERSION} from the static binaries tarball (the docker-engine apt repository the
# 2016 provisioning used is gone), with the socket-activated systemd units Docker shipped for
# 1.11. The daemon command is `docker daemon` (dockerd only exists from 1.12 on).
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env DOCKER_VERSION DOCKER_STORAGE_DRIVER DOCKER_USERS

installed=$(/usr/bin/docker --version 2>/dev/null || true)
if [[ $installed != "Docker version ${DOCKER_VERSION},"* ]]; then
  tarball=$(artifact "docker-${DOCKER_VERSION}.tgz")
  unpack=$(mktemp -d)
  tar -xzf "$tarball" -C "$unpack"
  [[ -x $unpack/docker/docker ]] || die "docker-${DOCKER_VERSION}.tgz has no docker/docker"
  # docker, docker-containerd, docker-containerd-ctr, docker-containerd-shim, docker-runc
  install -m 0755 "$unpack"/docker/* /usr/bin/
  rm -rf "$unpack"
  installed=$(/usr/bin/docker --version)
  [[ $installed == "Docker version ${DOCKER_VERSION},"* ]] || die "installed docker reports '$installed', expected ${DOCKER_VERSION}"
fi

getent group docker >/dev/null || groupadd --system docker

units_changed=0
replace_file /etc/systemd/system/docker.socket 0644 <<'UNIT'
[Unit]
Description=Docker Socket for the API
PartOf=docker.service

[Socket]
ListenStream=/var/run/docker.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
UNIT
((REPLACE_FILE_CHANGED)) && units_changed=1

replace_file /etc/systemd/system/docker.service 0644 <<UNIT
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network.target docker.socket
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/docker daemon -H fd:// --storage-driver=${DOCKER_STORAGE_DRIVER}
MountFlags=slave
LimitNOFILE=1048576
LimitNPROC=1048576
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Delegate=yes

[Install]
WantedBy=multi-user.target
UNIT
((REPLACE_FILE_CHANGED)) && units_changed=1

if ((units_changed)); then
  systemctl daemon-reload
fi
systemctl enable docker.socket docker.service
if ((units_changed)); then
  systemctl restart docker.service
else
  systemctl start docker.service
fi

for user in $DOCKER_USERS; do
  if id -u "$user" >/dev/null 2>&1; then
    usermod -aG docker "$user"
  else
    die "DOCKER_USERS names '$user', which does not exist"
  fi
done

docker info >/dev/null || die "docker ${DOCKER_VERSION} does not answer on /var/run/docker.sock"
log "docker ${DOCKER_VERSION} running (storage driver ${DOCKER_STORAGE_DRIVER})"
