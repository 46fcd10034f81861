# Sourced by scripts/keystone-venv.sh and bench/setup-upstream.sh: a virtualenv made from one
# requirements file, with a stamp file holding the file's hash so that a second run returns
# at once (idempotent). Not run on its own.

# venv_current VENV REQS BIN...: true when VENV has every BIN and its stamp matches REQS.
venv_current() {
  local venv="$1" reqs="$2" bin
  shift 2
  for bin in "$@"; do
    [ -x "$venv/bin/$bin" ] || return 1
  done
  [ -f "$venv/.requirements.sha256" ] \
    && [ "$(cat "$venv/.requirements.sha256")" = "$(sha256sum "$reqs" | cut -d' ' -f1)" ]
}

# venv_install LABEL VENV REQS PYTHON PACKAGE CHECK...: makes or updates VENV from REQS with
# PYTHON, runs CHECK (a command of the venv's bin, with its arguments), then writes the stamp.
venv_install() {
  local label="$1" venv="$2" reqs="$3" python="$4" package="$5"
  shift 5
  echo "$label: installing $reqs into $venv"
  test -x "$venv/bin/python" || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip wheel setuptools
  "$venv/bin/pip" install -q -r "$reqs"
  "$venv/bin/$1" "${@:2}" >/dev/null
  sha256sum "$reqs" | cut -d' ' -f1 >"$venv/.requirements.sha256"
  echo "$label: ready ($package $("$venv/bin/pip" show "$package" | sed -n 's/^Version: //p'))"
}
