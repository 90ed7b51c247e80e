# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/run.sh: the project's virtualenv, kept in step with
# the requirements. Needs VENV and note/die from scripts/lib/services.sh.

ensure_venv() {  # REQUIREMENTS_FILE: create or reuse $VENV and install that file into it
  local requirements=$1
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    local clear=()
    [ -f "$VENV/pyvenv.cfg" ] && clear=(--clear)  # a broken venv (e.g. its python moved): rebuild it
    note "creating virtualenv $VENV"
    python3 -m venv "${clear[@]}" "$VENV"
  fi
  # Reinstall only when a requirements file changed since the last successful install.
  local stamp="$VENV/.orderflow-${requirements%.txt}.sha256" sums
  sums=$(sha256sum requirements.txt "$requirements")
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sums" ] && return 0
  note "installing $requirements into $VENV"
  # This machine's pip config names a local index that may not exist; its warning is noise.
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" 2>&1 |
    { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2; then
    die 1 "pip install -r $requirements failed"
  fi
  echo "$sums" >"$stamp"
}
