#!/usr/bin/env bash
# The lab's network: one bridge on the deploy host, one network namespace per lab host joined
# to it by a veth pair. Every subcommand is idempotent and prints "changed" only when it
# changed something (the Ansible role's changed_when reads that).
#
#   lab-net.sh bridge-up   BRIDGE ADDRESS/PREFIX
#   lab-net.sh bridge-down BRIDGE [--if-unused]   (--if-unused: only while no host is plugged in)
#   lab-net.sh host-up     BRIDGE NAME ADDRESS/PREFIX
#   lab-net.sh host-down   NAME
#   lab-net.sh netns|veth  NAME    (prints the host's namespace or host-side veth name)
set -euo pipefail

changed=0
mark() { changed=1; }
finish() { if [ "$changed" = 1 ]; then echo changed; else echo ok; fi; }

# Netns and host-side veth names are derived from the host name. Interface names are limited
# to 15 characters: long host names get a hash instead.
netns_of() { echo "lab-$1"; }
veth_of() {
  if [ ${#1} -le 12 ]; then echo "ve-$1"; else echo "ve-$(printf %s "$1" | md5sum | cut -c1-12)"; fi
}

bridge_up() {
  local br=$1 cidr=$2
  if ! ip link show dev "$br" >/dev/null 2>&1; then
    ip link add name "$br" type bridge
    mark
  fi
  if ! ip -o -4 addr show dev "$br" | grep -qw "inet $cidr"; then
    ip addr add "$cidr" dev "$br"
    mark
  fi
  if ! ip -o link show dev "$br" | grep -q '[<,]UP[,>]'; then
    ip link set dev "$br" up
    mark
  fi
}

bridge_down() {
  local br=$1 mode=${2:-}
  # Another lab run may have plugged a host in since this one looked: never cut it off.
  if [ "$mode" = --if-unused ] && [ -n "$(ls -A "/sys/class/net/$br/brif" 2>/dev/null)" ]; then
    return 0
  fi
  if ip link show dev "$br" >/dev/null 2>&1; then
    ip link del dev "$br"
    mark
  fi
}

host_up() {
  local br=$1 name=$2 cidr=$3 ns veth
  ns=$(netns_of "$name")
  veth=$(veth_of "$name")
  if [ ! -e "/run/netns/$ns" ]; then
    # Two hosts on one address would take each other's traffic: refuse, naming the other one.
    local other
    for other in /run/netns/lab-*; do
      [ -e "$other" ] || continue
      if ip -n "${other##*/}" -o -4 addr show 2>/dev/null | grep -qw "inet ${cidr%/*}"; then
        echo "lab-net: ${cidr%/*} is already the address of lab host ${other##*/lab-}; choose another for $name" >&2
        exit 1
      fi
    done
    ip netns add "$ns"
    mark
  fi
  if ! ip -n "$ns" -o link show dev lo | grep -q '[<,]UP[,>]'; then
    ip -n "$ns" link set dev lo up
    mark
  fi
  if ! ip -n "$ns" link show dev eth0 >/dev/null 2>&1; then
    # A half-made pair (host end left from an interrupted run) is removed first.
    ip link del dev "$veth" >/dev/null 2>&1 || true
    ip link add name "$veth" type veth peer name eth0 netns "$ns"
    mark
  fi
  if [ "$(cat "/sys/class/net/$veth/master/ifindex" 2>/dev/null)" != "$(cat "/sys/class/net/$br/ifindex")" ]; then
    ip link set dev "$veth" master "$br"
    mark
  fi
  if ! ip -o link show dev "$veth" | grep -q '[<,]UP[,>]'; then
    ip link set dev "$veth" up
    mark
  fi
  if ! ip -n "$ns" -o -4 addr show dev eth0 | grep -qw "inet $cidr"; then
    ip -n "$ns" addr flush dev eth0
    ip -n "$ns" addr add "$cidr" dev eth0
    mark
  fi
  if ! ip -n "$ns" -o link show dev eth0 | grep -q '[<,]UP[,>]'; then
    ip -n "$ns" link set dev eth0 up
    mark
  fi
}

host_down() {
  local name=$1 ns veth
  ns=$(netns_of "$name")
  veth=$(veth_of "$name")
  if ip link show dev "$veth" >/dev/null 2>&1; then
    ip link del dev "$veth"
    mark
  fi
  if [ -e "/run/netns/$ns" ]; then
    ip netns del "$ns"
    mark
  fi
}

# Lab runs may overlap (molecule scenarios next to make lab): one change of the network at a time.
exec 9>/run/glance-lab-net.lock
flock 9

case "${1:-}" in
  bridge-up) bridge_up "$2" "$3" ;;
  bridge-down) bridge_down "$2" "${3:-}" ;;
  host-up) host_up "$2" "$3" "$4" ;;
  host-down) host_down "$2" ;;
  netns) netns_of "$2"; exit 0 ;;
  veth) veth_of "$2"; exit 0 ;;
  *) echo "usage: $0 bridge-up BR CIDR | bridge-down BR [--if-unused] | host-up BR NAME CIDR | host-down NAME | netns NAME | veth NAME" >&2; exit 2 ;;
esac
finish
