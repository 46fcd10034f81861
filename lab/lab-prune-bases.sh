#!/usr/bin/env bash
# Removes the lab's old base root filesystems: every directory next to KEEP that no lab host
# was created on (HOSTS_DIR/*/base names each host's base). A host's base is the lower layer
# of its root: it stays as long as the host does. Prints "changed" when it removed one.
#
#   lab-prune-bases.sh KEEP HOSTS_DIR
set -euo pipefail

keep=$1 hosts_dir=$2 changed=0
for old in "$(dirname "$keep")"/*; do
  [ "$old" = "$keep" ] && continue
  # A lock left by a build whose base is gone, unless a build holds it now.
  case "$old" in
    *.lock)
      if [ ! -e "${old%.lock}" ] && flock -n "$old" true; then rm -f "$old"; fi
      continue ;;
  esac
  [ -d "$old" ] || continue
  # grep on the files themselves: a pipe into grep -q would fail under pipefail on a match.
  if grep -qxF -- "$old" "$hosts_dir"/*/base 2>/dev/null; then continue; fi
  # A build in progress holds its lock.
  if [ "${old%.tmp}" != "$old" ] && ! flock -n "${old%.tmp}.lock" true; then continue; fi
  rm -rf --one-file-system "$old"
  rm -f "$old.lock"
  echo "removed unused base $old" >&2
  changed=1
done
if [ "$changed" = 1 ]; then echo changed; else echo ok; fi
