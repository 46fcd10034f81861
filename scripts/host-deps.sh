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
  # issue 18: a real broker for the notification tests, qemu-img for the conversion plugin,
  # promtool (prometheus) to check the shipped alert rules
  rabbitmq-server qemu-utils prometheus
  # building wheels; libmariadb-dev: mysqlclient (the service's MariaDB driver) builds from
  # source against it, in the venv and in the wheelhouse (the hosts then need libmariadb3)
  build-essential python3-dev libffi-dev libssl-dev pkg-config libmariadb-dev
)
# Another apt (unattended-upgrades, a second `make`) may hold apt's locks: wait for them, up
# to APT_LOCK_TIMEOUT seconds, instead of failing at once. apt-get install waits by itself
# (DPkg::Lock::Timeout); apt-get update ignores that option for the lists lock (apt 2.6), so it
# is retried for as long as its error is the lock.
lock_timeout=${APT_LOCK_TIMEOUT:-600}
apt_get() { apt-get -o DPkg::Lock::Timeout="$lock_timeout" "$@"; }
apt_update() {
  local deadline=$((SECONDS + lock_timeout)) out said=""
  until out=$(apt_get update -qq 2>&1); do
    if [[ $out != *"Could not get lock"* ]] || ((SECONDS >= deadline)); then
      printf '%s\n' "$out" >&2
      return 1
    fi
    [ -n "$said" ] || echo "host-deps: another process holds apt's package lists; waiting (up to ${lock_timeout} s)" >&2
    said=1
    sleep "${APT_LOCK_POLL:-5}"
  done
  [ -z "$out" ] || printf '%s\n' "$out"
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-deps: installing ${missing[*]}"
  apt_update
  # The packaged services are not started here: the lab and the tests start their own.
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
