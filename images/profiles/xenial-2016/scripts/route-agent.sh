#!/usr/bin/env bash
# The demo vpp-calico-route-agent in ROUTE_AGENT_DIR (/home/ubuntu/..., where the 2016 README
# runs it: `cd ...; sudo python -i agent.py ...`), with its Python dependencies from the lock.
# Two of its pins are left out on purpose: PyPI's "etcd" (dsoprea's PythonEtcdClient, which
# drags in requests 2.1.0 and pytz 2013.8) installs a top-level `etcd` package over
# python-etcd's, and conman, which the agent uses, needs python-etcd's. vpp-papi==1.0 is the
# binding the vpp layer built; pip only checks that it is there.
set -euo pipefail
# shellcheck source=lib/boxcar.sh
source "${BOXCAR_LIB:-/tmp/boxcar/lib/boxcar.sh}"
require_env ROUTE_AGENT_REF ROUTE_AGENT_DIR BOXCAR_ARTIFACTS

stamp=$BOXCAR_STATE/route-agent.ref
if [[ $(cat "$stamp" 2>/dev/null || true) != "$ROUTE_AGENT_REF" || ! -f $ROUTE_AGENT_DIR/agent.py ]]; then
  tarball=$(artifact "vpp-calico-route-agent-${ROUTE_AGENT_REF}.tar.gz")
  parent=$(dirname "$ROUTE_AGENT_DIR")
  install -d -m 0755 "$parent"
  unpack=$(mktemp -d "$parent/.route-agent.XXXXXX")
  tar -xzf "$tarball" -C "$unpack" --strip-components=1 --no-same-owner
  [[ -f $unpack/agent.py && -f $unpack/requirements.txt ]] || die "vpp-calico-route-agent-${ROUTE_AGENT_REF}.tar.gz has no agent.py/requirements.txt"
  chmod 0755 "$unpack"
  rm -rf "$ROUTE_AGENT_DIR"
  mv "$unpack" "$ROUTE_AGENT_DIR"
  install -d -m 0755 "$BOXCAR_STATE"
  printf '%s\n' "$ROUTE_AGENT_REF" >"$stamp"
fi

export PIP_NO_INDEX=1 PIP_FIND_LINKS=$BOXCAR_ARTIFACTS PIP_DISABLE_PIP_VERSION_CHECK=1
requirements=$(mktemp)
grep -Ev '^[[:space:]]*(etcd|pytz|requests)[[:space:]]*==' "$ROUTE_AGENT_DIR/requirements.txt" >"$requirements"
# conman 0.5 declares setup_requires=nose, which easy_install would fetch from PyPI:
# installed first, it is already satisfied.
pip install nose
pip install -r "$requirements"
rm -f "$requirements"

python -c 'import vpp_papi, netaddr; from conman.conman_etcd import ConManEtcd' ||
  die "the route agent's imports fail"
log "route agent ${ROUTE_AGENT_REF} in ${ROUTE_AGENT_DIR}"
