#!/usr/bin/env bash
# One lab host's life cycle on the deploy host. State lives in STATE_DIR (one per host):
# upper/ work/ (the overlay's writable layers), root/ (the merged root), base (path of the
# lower layer this host was created on), supervisor.pid, nspawn.pid, console.log.
# Every subcommand is idempotent and prints "changed" only when it changed something.
#
#   lab-host.sh up       STATE_DIR NAME ADDRESS/PREFIX BRIDGE BASE_ROOTFS PUBKEY_FILE <HOSTS_FILE
#                        (network, overlay, /etc/hostname, /etc/hosts from stdin, root's key, boot)
#   lab-host.sh wait-all TIMEOUT_SECONDS STATE_DIR:NAME:ADDRESS...   (in parallel)
#   lab-host.sh down     STATE_DIR NAME TIMEOUT_SECONDS   (power off, unmount, unplug, delete)
# and the steps they are made of:
#   lab-host.sh mount  STATE_DIR BASE_ROOTFS
#   lab-host.sh start  STATE_DIR NAME NETNS
#   lab-host.sh wait   STATE_DIR NAME ADDRESS TIMEOUT_SECONDS
#   lab-host.sh stop   STATE_DIR TIMEOUT_SECONDS
#   lab-host.sh umount STATE_DIR
# and, for failover tests (molecule/ha), a power loss and the power coming back:
#   lab-host.sh crash  STATE_DIR NAME             (SIGKILL to the guest's PID 1, the cable pulled)
#   lab-host.sh revive STATE_DIR NAME ADDRESS/PREFIX BRIDGE TIMEOUT_SECONDS
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
changed=0
tmp=""
trap 'rm -f "$tmp"' EXIT
finish() { if [ "$changed" = 1 ]; then echo changed; else echo ok; fi; }
die() { echo "lab-host: $*" >&2; exit 1; }

# A process counts as alive unless gone or a zombie: this machine's PID 1 reaps orphans late,
# so kill -0 alone would see a stopped host as still running.
alive() {
  local pid=$1 stat
  [ -n "$pid" ] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
# The PID in a pid file, if that process is alive and is what the file says (PIDs get reused).
pid_of() {
  local file=$1 want=$2 pid
  pid=$(cat "$file" 2>/dev/null) || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want" || return 1
  echo "$pid"
}
supervisor_pid() { pid_of "$1/supervisor.pid" lab-supervise.sh; }
nspawn_pid() { pid_of "$1/nspawn.pid" systemd-nspawn; }
# The guest's PID 1 (systemd) is the child of nspawn.
leader_pid() {
  local npid child
  npid=$(nspawn_pid "$1") || return 1
  # shellcheck disable=SC2013 # the file is one line of space-separated PIDs
  for child in $(cat /proc/"$npid"/task/*/children 2>/dev/null); do
    alive "$child" && { echo "$child"; return 0; }
  done
  return 1
}

cmd_mount() {
  local state=$1 base=$2 root
  root="$state/root"
  # A host keeps the base it was created on (its disk lives in upper/ on top of that base).
  if [ -s "$state/base" ]; then base=$(cat "$state/base"); fi
  [ -e "$base/.complete" ] || die "base root filesystem $base is missing: destroy this host and create it again"
  mkdir -p "$state/upper" "$state/work" "$root"
  [ -s "$state/base" ] || echo "$base" >"$state/base"
  if ! mountpoint -q "$root"; then
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$state/upper,workdir=$state/work" "$root"
    changed=1
  fi
}

cmd_start() {
  local state=$1 name=$2 netns=$3
  supervisor_pid "$state" >/dev/null && return 0
  mountpoint -q "$state/root" || die "$state/root is not mounted"
  [ -e "$netns" ] || die "network namespace $netns is missing"
  rm -f "$state/nspawn.pid" "$state/stop"
  # In the background of a non-interactive shell, setsid is not a group leader and so execs the
  # supervisor in place: $! is the supervisor's PID. Its own session keeps it out of the
  # caller's (Ansible's) process group.
  setsid "$here/lab-supervise.sh" "$name" "$state/root" "$netns" "$state" \
    </dev/null >>"$state/console.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/supervisor.pid"
  changed=1
}

# Why a boot is still `starting`: the jobs systemd is still running, the state of their units
# and the end of the boot's journal (the guest keeps running; the caller may destroy it next).
boot_jobs() {
  local leader=$1 name=$2 unit
  echo "lab-host: $name: start jobs still running:"
  nsenter -t "$leader" -a systemctl list-jobs --no-legend --plain 2>&1 || true
  for unit in $(nsenter -t "$leader" -a systemctl list-jobs --no-legend --plain 2>/dev/null \
                | awk '$3 == "start" && $4 == "running" {print $2}'); do
    echo "lab-host: $name: systemctl status $unit:"
    nsenter -t "$leader" -a systemctl status --no-pager --lines=25 "$unit" 2>&1 || true
  done
  # HAProxy logs every request: left out, else they would be all there is.
  echo "lab-host: $name: the boot's journal, last 60 lines (without HAProxy's request log):"
  nsenter -t "$leader" -a journalctl -b --no-pager -n 2000 2>&1 | grep -v ' haproxy\[' | tail -n 60 || true
}

cmd_wait() {
  local state=$1 name=$2 address=$3 timeout=$4 deadline leader status="" started
  started=$(date +%s%N)
  deadline=$(($(date +%s) + timeout))
  while :; do
    supervisor_pid "$state" >/dev/null || die "$name is not running: see $state/console.log"
    if leader=$(leader_pid "$state"); then
      status=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true)
      case "$status" in
        running) break ;;
        degraded)
          # Booted, with failed units: named on stderr and in the host's console log.
          {
            echo "lab-host: $name booted degraded; failed units:"
            nsenter -t "$leader" -a systemctl --failed --no-legend --plain || true
          } 2>&1 | tee -a "$state/console.log" >&2
          break ;;
      esac
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      local running=""
      if [ -n "$leader" ]; then
        boot_jobs "$leader" "$name" 2>&1 | tee -a "$state/console.log" >&2
        running=$(nsenter -t "$leader" -a systemctl list-jobs --no-legend --plain 2>/dev/null \
                  | awk '$4 == "running" {printf "%s ", $2}')
      fi
      die "$name not booted after ${timeout}s (state: ${status:-no guest}; jobs running: ${running:-none}); see $state/console.log"
    fi
    sleep 0.2
  done
  # systemd is up; sshd answers with its banner once it listens.
  until timeout 2 bash -c "exec 3<>/dev/tcp/$address/22 && head -c 4 <&3" 2>/dev/null | grep -q SSH-; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$name: no SSH on $address:22 after ${timeout}s"
    sleep 0.2
  done
  echo "$name ready ($status) after $((($(date +%s%N) - started) / 1000000)) ms of waiting" >&2
}

cmd_stop() {
  local state=$1 timeout=$2 spid npid deadline
  spid=$(supervisor_pid "$state" || true)
  npid=$(nspawn_pid "$state" || true)
  [ -n "$spid$npid" ] || return 0
  changed=1
  # One SIGTERM to nspawn powers the guest off cleanly (a second one would kill it at once);
  # the stop file tells the supervisor not to boot it again. Between two boots of a rebooting
  # guest there is no nspawn: then the supervisor is told directly.
  touch "$state/stop"
  if [ -n "$npid" ]; then
    kill -TERM "$npid" 2>/dev/null || true
  elif [ -n "$spid" ]; then
    kill -TERM "$spid" 2>/dev/null || true
  fi
  deadline=$(($(date +%s) + timeout))
  while alive "$npid" || alive "$spid"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "lab-host: $state did not power off in ${timeout}s: killing nspawn $npid" >&2
      if alive "$npid"; then kill -KILL "$npid" 2>/dev/null || true; fi
      sleep 1
      if alive "$spid"; then kill -KILL "$spid" 2>/dev/null || true; fi
      break
    fi
    sleep 0.2
  done
  rm -f "$state/supervisor.pid" "$state/nspawn.pid"
}

cmd_umount() {
  local state=$1
  if mountpoint -q "$state/root" 2>/dev/null; then
    umount "$state/root"
    changed=1
  fi
}

# Installs SOURCE at DEST with MODE (owner root) unless DEST already has that content and mode.
put_file() {
  local src=$1 dest=$2 mode=$3
  if cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ] \
    && [ "$(stat -c %u:%g "$dest")" = 0:0 ]; then
    return 0
  fi
  install -o root -g root -m "$mode" "$src" "$dest"
  changed=1
}

cmd_up() {
  local state=$1 name=$2 cidr=$3 bridge=$4 base=$5 pubkey=$6 root net
  root="$state/root"
  net=$("$here/lab-net.sh" host-up "$bridge" "$name" "$cidr")
  [ "$net" = changed ] && changed=1
  mkdir -p "$state"
  cmd_mount "$state" "$base"
  tmp=$(mktemp)
  echo "$name" >"$tmp"
  put_file "$tmp" "$root/etc/hostname" 0644
  cat >"$tmp"
  # 0644: service users resolve names too (Swift's libraries look localhost up as swift).
  put_file "$tmp" "$root/etc/hosts" 0644
  if [ ! -d "$root/root/.ssh" ]; then
    install -d -o root -g root -m 0700 "$root/root/.ssh"
    changed=1
  fi
  put_file "$pubkey" "$root/root/.ssh/authorized_keys" 0600
  net=$("$here/lab-net.sh" netns "$name")
  cmd_start "$state" "$name" "/run/netns/$net"
}

# Waits for several hosts at once (they boot in parallel); fails if any does not come up.
cmd_wait_all() {
  local timeout=$1 spec state name address pids=() failed=0 pid
  shift
  for spec in "$@"; do
    IFS=: read -r state name address <<<"$spec"
    cmd_wait "$state" "$name" "$address" "$timeout" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  return "$failed"
}

cmd_down() {
  local state=$1 name=$2 timeout=$3 net
  if [ -d "$state" ]; then
    cmd_stop "$state" "$timeout"
    cmd_umount "$state"
  fi
  net=$("$here/lab-net.sh" host-down "$name")
  [ "$net" = changed ] && changed=1
  # The host's cgroups (made by lab-supervise.sh), deepest first; busy ones stay.
  local cg
  for cg in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
    cg="$cg/lab.slice/$name"
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$cg" ] || changed=1
  done
  if [ -d "$state" ]; then
    # Never through a mounted root: only the host's own layers and records go.
    mountpoint -q "$state/root" && die "$state/root is still mounted"
    rm -rf --one-file-system "$state"
    changed=1
  fi
}

# A power loss: every process of the guest dies at once (SIGKILL to its PID 1 ends its PID
# namespace) and its cable is pulled (the host end of its veth down), so addresses the guest
# held, a keepalived VIP included, stop answering: the namespace itself outlives the guest.
cmd_crash() {
  local state=$1 name=$2 leader spid
  spid=$(supervisor_pid "$state" || true)
  leader=$(leader_pid "$state" || true)
  [ -n "$spid$leader" ] || return 0
  changed=1
  touch "$state/stop"
  ip link set dev "$("$here/lab-net.sh" veth "$name")" down
  [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
  local deadline=$(($(date +%s) + 30))
  while alive "$spid"; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -KILL "$spid" 2>/dev/null || true; break; }
    sleep 0.1
  done
}

# The power back: the cable in, the guest's leftover addresses (a VIP it held) removed, boot.
cmd_revive() {
  local state=$1 name=$2 cidr=$3 br=$4 timeout=$5 ns
  supervisor_pid "$state" >/dev/null && return 0
  ns=$("$here/lab-net.sh" netns "$name")
  ip -n "$ns" addr flush dev eth0
  "$here/lab-net.sh" host-up "$br" "$name" "$cidr" >/dev/null
  cmd_start "$state" "$name" "/run/netns/$ns"
  cmd_wait "$state" "$name" "${cidr%/*}" "$timeout"
}

case "${1:-}" in
  crash) cmd_crash "$2" "$3" ;;
  revive) cmd_revive "$2" "$3" "$4" "$5" "$6" ;;
  up) cmd_up "$2" "$3" "$4" "$5" "$6" "$7" ;;
  wait-all) shift; cmd_wait_all "$@" ;;
  down) cmd_down "$2" "$3" "$4" ;;
  mount) cmd_mount "$2" "$3" ;;
  start) cmd_start "$2" "$3" "$4" ;;
  wait) cmd_wait "$2" "$3" "$4" "$5" ;;
  stop) cmd_stop "$2" "$3" ;;
  umount) cmd_umount "$2" ;;
  *) echo "usage: $0 up|wait-all|down|mount|start|wait|stop|umount ... (see the header)" >&2; exit 2 ;;
esac
finish
