#!/usr/bin/env bash
# Creates or updates the Keystone virtualenv from requirements-keystone.txt (idempotent).
# Usage: scripts/keystone-venv.sh [DIR]   (default: <repo>/.venv-keystone, git-ignored)
# Keystone lives in its own venv: its pins (e.g. SQLAlchemy 2.1) differ from the service's.
# A stamp file holding the requirements' hash makes a second run return at once.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-keystone}"
reqs="$repo/requirements-keystone.txt"
python="${KEYSTONE_PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ -x "$venv/bin/keystone-manage" ] && [ -x "$venv/bin/gunicorn" ] \
  && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "keystone-venv: keystone 30 needs Python >= 3.11; $("$python" --version 2>&1) found." \
    "Set KEYSTONE_PYTHON to a newer interpreter." >&2
  exit 1
fi

echo "keystone-venv: installing $reqs into $venv"
test -x "$venv/bin/python" || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip wheel setuptools
"$venv/bin/pip" install -q -r "$reqs"
"$venv/bin/keystone-manage" --version >/dev/null
echo "$want" >"$stamp"
echo "keystone-venv: ready ($("$venv/bin/pip" show keystone | sed -n 's/^Version: //p'))"
