#!/usr/bin/env bash
# Creates or updates the Keystone virtualenv from requirements-keystone.txt (idempotent).
# Usage: scripts/keystone-venv.sh [DIR]   (default: <repo>/.venv-keystone, git-ignored)
# Keystone lives in its own venv: its pins (e.g. SQLAlchemy 2.1) differ from the service's.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/stamped-venv.sh"
venv="${1:-$repo/.venv-keystone}"
reqs="$repo/requirements-keystone.txt"
python="${KEYSTONE_PYTHON:-python3}"

venv_current "$venv" "$reqs" keystone-manage gunicorn && exit 0
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "keystone-venv: keystone 30 needs Python >= 3.11; $("$python" --version 2>&1) found." \
    "Set KEYSTONE_PYTHON to a newer interpreter." >&2
  exit 1
fi
venv_install keystone-venv "$venv" "$reqs" "$python" keystone keystone-manage --version
