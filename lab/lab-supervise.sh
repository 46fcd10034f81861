#!/usr/bin/env bash
# Keeps one lab host booted: runs systemd-nspawn in the foreground and starts it again when
# the guest reboots (nspawn exits 133 then), so `reboot` inside a host and Ansible's reboot
# module work. Any other exit (poweroff, SIGTERM, failure) ends the supervisor.
#
#   lab-supervise.sh NAME ROOT NETNS_PATH STATE_DIR
#
# STATE_DIR/nspawn.pid holds the current nspawn PID. To stop the host: create STATE_DIR/stop,
# then SIGTERM that PID once (nspawn powers the guest off; a second SIGTERM would kill it).
# SIGTERM to the supervisor itself does the same.
set -uo pipefail

name=$1 root=$2 netns=$3 state=$4
child=0
stopping=0
log() { echo "$(date '+%F %T') lab-supervise[$name]: $*"; }
on_term() {
  stopping=1
  [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
}
trap on_term TERM INT

# Each host gets its own cgroup. nspawn puts the guest's systemd in a "payload" cgroup below
# its own (read from the unified hierarchy on this hybrid v1/v2 machine): without this all
# hosts would share /payload, and their systemd instances would create and remove the same
# unit cgroups (units failing at random with 219/CGROUP when hosts boot together).
for hierarchy in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
  [ -e "$hierarchy/cgroup.procs" ] || continue
  if ! { mkdir -p "$hierarchy/lab.slice/$name" && echo $$ >"$hierarchy/lab.slice/$name/cgroup.procs"; }; then
    log "cannot move into $hierarchy/lab.slice/$name"
  fi
  # A pure v2 machine has one hierarchy, mounted at /sys/fs/cgroup itself.
  [ "$hierarchy" = /sys/fs/cgroup/systemd ] && break
done

while :; do
  log "booting"
  systemd-nspawn -b -M "$name" -D "$root" \
    --network-namespace-path="$netns" --private-network \
    --register=no --keep-unit --console=read-only \
    --resolv-conf=off --timezone=off --link-journal=no </dev/null &
  child=$!
  echo "$child" >"$state/nspawn.pid"
  # wait returns early when a trapped signal arrives: keep waiting until nspawn has exited.
  while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=0
  rm -f "$state/nspawn.pid"
  if [ "$stopping" = 1 ] || [ -e "$state/stop" ]; then
    log "stopped on request (nspawn exited with $rc)"
    exit 0
  fi
  if [ "$rc" != 133 ]; then
    log "nspawn exited with $rc: host stopped"
    exit "$rc"
  fi
  log "guest rebooted (exit 133): starting it again"
done
