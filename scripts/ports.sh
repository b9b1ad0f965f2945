# Sourced by demo.sh and prod.sh: say which process holds a port before starting a server on it.

port_holder() {  # port_holder PORT: prints "pid N: COMMAND" of the TCP listener on PORT; fails if none
  local line pid
  line="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)" || true
  [[ -n "$line" ]] || return 1
  pid="$(grep -o 'pid=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2)" || true
  if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]]; then
    printf 'pid %s: %s' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-160 | sed 's/ *$//')"
  else
    printf 'a process this user cannot see (run: ss -ltnp "sport = :%s" as root)' "$1"
  fi
}

check_ports_free() {  # check_ports_free NAME=PORT...: exit 1, naming each holder, when a port is taken
  local item name port holder taken=0
  for item in "$@"; do
    name="${item%%=*}"; port="${item#*=}"
    if holder="$(port_holder "$port")"; then
      echo "   port $port ($name) is taken by $holder" >&2
      taken=1
    fi
  done
  if [[ $taken == 1 ]]; then
    echo "   stop that process (an earlier run?) or choose other ports (see --help)" >&2
    return 1
  fi
}
