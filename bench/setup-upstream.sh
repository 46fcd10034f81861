#!/usr/bin/env bash
# Creates or updates upstream Glance's virtualenv from bench/requirements-upstream.txt (idempotent).
# Usage: bench/setup-upstream.sh [DIR]   (default: <repo>/.venv-glance-upstream, git-ignored)
# Upstream Glance lives in its own venv: its pins (SQLAlchemy 2.1, oslo.db, eventlet) differ
# from the service's. uwsgi is built from source by pip (needs build-essential, python3-dev).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/stamped-venv.sh"
venv="${1:-${GLANCE_UPSTREAM_VENV:-$repo/.venv-glance-upstream}}"
reqs="$repo/bench/requirements-upstream.txt"

venv_current "$venv" "$reqs" uwsgi glance-manage && exit 0
venv_install setup-upstream "$venv" "$reqs" "${GLANCE_UPSTREAM_PYTHON:-python3}" glance glance-manage --version
