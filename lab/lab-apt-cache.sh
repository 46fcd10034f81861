#!/usr/bin/env bash
# The lab's apt cache: apt-cacher-ng on the bridge address, run as its own system user with
# a minimal configuration written here (no Remap rules: requests go to the hosts named in the
# lab hosts' apt sources; the packaged configuration redirects to mirrors that fail here).
# This machine has no systemd to run the packaged service, so the daemon is run directly and
# tracked by its PID file. Idempotent; prints "changed" only when it changed something.
#
#   lab-apt-cache.sh start DIR ADDRESS PORT USER   (DIR: config, cache/, log/, run/)
#   lab-apt-cache.sh stop  DIR
set -euo pipefail

changed=0
conf=""
trap 'rm -f "$conf"' EXIT

# The daemon's PID if it is alive and really the cache (PIDs get reused; zombies wait long
# for this machine's PID 1 to reap them).
running_pid() {
  local pid stat
  pid=$(cat "$1/run/apt-cacher-ng.pid" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "apt-cacher-ng -c $1" || return 1
  echo "$pid"
}

stop() {
  local dir=$1 pid
  pid=$(running_pid "$dir") || { rm -f "$dir/run/apt-cacher-ng.pid"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 100); do
    running_pid "$dir" >/dev/null || break
    sleep 0.1
  done
  if running_pid "$dir" >/dev/null; then kill -KILL "$pid"; fi
  rm -f "$dir/run/apt-cacher-ng.pid"
  changed=1
}

start() {
  local dir=$1 address=$2 port=$3 user=$4
  install -d -o root -g root -m 0755 "$dir"
  install -d -o "$user" -g "$user" -m 0755 "$dir/cache" "$dir/log" "$dir/run"
  conf=$(mktemp)
  cat >"$conf" <<CONF
# Written by lab/lab-apt-cache.sh: the lab's apt cache.
CacheDir: $dir/cache
LogDir: $dir/log
PidFile: $dir/run/apt-cacher-ng.pid
SupportDir: /usr/lib/apt-cacher-ng
BindAddress: $address
Port: $port
ExThreshold: 4
CONF
  if ! cmp -s "$conf" "$dir/acng.conf"; then
    install -o root -g root -m 0644 "$conf" "$dir/acng.conf"
    changed=1
    stop "$dir"
  fi
  running_pid "$dir" >/dev/null && return 0
  # The daemon forks and writes its own PID file.
  # Without fd 9: the daemon would hold this script's lock for as long as it runs.
  setpriv --reuid="$user" --regid="$user" --init-groups apt-cacher-ng -c "$dir" 9>&-
  for _ in $(seq 50); do
    running_pid "$dir" >/dev/null && { changed=1; return 0; }
    sleep 0.1
  done
  echo "apt-cacher-ng did not start: see $dir/log/" >&2
  exit 1
}

# Lab runs may overlap (molecule scenarios next to make lab): one start or stop at a time.
mkdir -p "${2:?usage: $0 start DIR ADDRESS PORT USER | stop DIR}"
exec 9>"$2/.lock"
flock 9

case "${1:-}" in
  start) start "$2" "$3" "$4" "$5" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start DIR ADDRESS PORT USER | stop DIR" >&2; exit 2 ;;
esac
if [ "$changed" = 1 ]; then echo changed; else echo ok; fi
