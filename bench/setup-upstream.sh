#!/usr/bin/env bash
# Creates or updates upstream Glance's virtualenv from bench/requirements-upstream.txt (idempotent).
# Usage: bench/setup-upstream.sh [DIR]   (default: <repo>/.venv-glance-upstream, git-ignored)
# Upstream Glance lives in its own venv: its pins (SQLAlchemy 2.1, oslo.db, eventlet) differ
# from the service's. uwsgi is built from source by pip (needs build-essential, python3-dev).
# A stamp file holding the requirements' hash makes a second run return at once.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${GLANCE_UPSTREAM_VENV:-$repo/.venv-glance-upstream}}"
reqs="$repo/bench/requirements-upstream.txt"
python="${GLANCE_UPSTREAM_PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ -x "$venv/bin/uwsgi" ] && [ -x "$venv/bin/glance-manage" ] \
  && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setup-upstream: installing $reqs into $venv"
test -x "$venv/bin/python" || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip wheel setuptools
"$venv/bin/pip" install -q -r "$reqs"
"$venv/bin/glance-manage" --version >/dev/null 2>&1
echo "$want" >"$stamp"
echo "setup-upstream: ready (glance $("$venv/bin/pip" show glance | sed -n 's/^Version: //p'))"
