# shellcheck shell=bash
# Sourced by scripts/test.sh: the headless browser the browser tests drive (tests/browser/).
# Debian's chromium at /usr/bin/chromium; Playwright's own browser download is not used.
# Needs note/die from scripts/lib/services.sh.

CHROMIUM=/usr/bin/chromium

ensure_chromium() {  # install Debian's chromium when it is missing, or stop and say why
  [ -x "$CHROMIUM" ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  if ! command -v apt-get >/dev/null || ! "${sudo[@]}" true 2>/dev/null; then
    die 2 "$CHROMIUM is missing and this user cannot apt-get install it: install Debian's chromium (apt-get install chromium); the browser tests need it"
  fi
  note "$CHROMIUM not found; running apt-get install chromium"
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium)
  # The package lists may be stale or missing on a fresh machine: update only if needed.
  "${install[@]}" >/dev/null 2>&1 || { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && "${install[@]}" >/dev/null; } ||
    die 2 "apt-get install chromium failed (output above); the browser tests need $CHROMIUM"
  [ -x "$CHROMIUM" ] || die 2 "apt-get installed chromium, but $CHROMIUM is still missing"
}
