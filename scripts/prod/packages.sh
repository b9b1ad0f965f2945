# shellcheck shell=bash
# Sourced by scripts/prod.sh: the Debian packages the parts run, installed when missing (as root).

ensure_packages() {
  local missing=() pkg
  for pkg in postgresql redis-server nginx prometheus; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing Debian packages: ${missing[*]} (install them as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]} (apt-get, ~1 min; log in $LOGS/apt.log)"
  # The lock timeout waits for another apt-get on the machine instead of failing at once.
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o DPkg::Lock::Timeout=300 "${missing[@]}") > "$LOGS/apt.log" 2>&1; then
    echo "   apt-get failed; see $LOGS/apt.log" >&2; exit 1
  fi
}
