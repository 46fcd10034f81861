#!/usr/bin/env bash
# The lab's apt cache: apt-cacher-ng on the bridge address, run as its own system user with
# the lab's minimal configuration (this machine has no systemd to run the packaged service).
# Idempotent; prints "changed" only when it started or stopped the daemon.
#
#   lab-apt-cache.sh start   CONF_DIR PID_FILE USER
#   lab-apt-cache.sh restart CONF_DIR PID_FILE USER
#   lab-apt-cache.sh stop    PID_FILE
set -euo pipefail

changed=0
# Alive and really the cache (PIDs get reused; zombies wait long for this machine's PID 1).
running_pid() {
  local pid stat
  pid=$(cat "$1" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q apt-cacher-ng || return 1
  echo "$pid"
}

start() {
  local conf=$1 pidfile=$2 user=$3 i
  running_pid "$pidfile" >/dev/null && return 0
  rm -f "$pidfile"
  # The daemon forks and writes its own PID file (PidFile in CONF_DIR/acng.conf).
  setpriv --reuid="$user" --regid="$user" --init-groups apt-cacher-ng -c "$conf" pidfile="$pidfile"
  for i in $(seq 50); do
    running_pid "$pidfile" >/dev/null && { changed=1; return 0; }
    sleep 0.1
  done
  echo "apt-cacher-ng did not start: see the logs under $conf/../log" >&2
  exit 1
}

stop() {
  local pidfile=$1 pid i
  pid=$(running_pid "$pidfile") || { rm -f "$pidfile"; return 0; }
  kill -TERM "$pid"
  for i in $(seq 100); do
    running_pid "$pidfile" >/dev/null || break
    sleep 0.1
  done
  if running_pid "$pidfile" >/dev/null; then kill -KILL "$pid"; fi
  rm -f "$pidfile"
  changed=1
}

case "${1:-}" in
  start) start "$2" "$3" "$4" ;;
  restart) stop "$3"; start "$2" "$3" "$4"; changed=1 ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start|restart CONF_DIR PID_FILE USER | stop PID_FILE" >&2; exit 2 ;;
esac
if [ "$changed" = 1 ]; then echo changed; else echo ok; fi
