#!/bin/bash
# `python -m pytest "$@"` with a base temporary directory of its own.
#
# Every pytest session of a user shares /tmp/pytest-of-<user> by default, and each new session
# prunes all but the three newest directories there: another session's live one included. A
# CI run's end-to-end fixtures lost theirs that way to the pytest run inside a molecule verify
# on the same machine ("could not create numbered dir ... after 20 tries"). Kept after a
# failure, for its logs; removed after a pass.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pytest-own.XXXXXX")
python -m pytest --basetemp="$tmp" "$@"
rc=$?
if [ "$rc" -eq 0 ]; then
    rm -rf "$tmp"
else
    echo "pytest-own-tmp: the failed run's temporary files are in $tmp" >&2
fi
exit "$rc"
