#!/usr/bin/env bash
# Installs the deploy host's Debian packages (idempotent). Needs root on Debian 12.
# Used by `make lab` and `make test`; add a package here, never install one by hand.
set -euo pipefail
packages=(
  # the lab: booting hosts on a private bridge, apt through a caching proxy
  debootstrap systemd-container apt-cacher-ng iproute2 openssh-client rsync
  # real servers for the service's tests
  mariadb-server mariadb-client memcached nginx-light
  # Ceph 16 for the rbd/s3 store tests (service/tests/fixtures/ceph.py runs it as plain processes)
  ceph-mon ceph-mgr ceph-osd radosgw ceph-common python3-rbd python3-rados
  # OpenStack Swift 2.30 for the swift store tests (service/tests/fixtures/swift.py runs it as
  # plain processes; Keystone auth in its proxy through keystonemiddleware)
  swift swift-proxy swift-account swift-container swift-object python3-keystonemiddleware
  # benchmarks
  wrk curl
  # building wheels
  build-essential python3-dev libffi-dev libssl-dev pkg-config
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-deps: installing ${missing[*]}"
  apt-get update -qq
  # The packaged services are not started here: the lab and the tests start their own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
