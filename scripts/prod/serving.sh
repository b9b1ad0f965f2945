# shellcheck shell=bash
# Sourced by scripts/prod.sh: the serving host: the API replicas, nginx in front of them, the UI.

start_replica() {  # start_replica api-N
  local part="$1" n="${1#api-}" port home
  port="${REPLICA_PORTS[$((n - 1))]}"; home="$PROD_DIR/$part"
  check_ports_free "$part=$port"
  mkdir -p "$home"
  # One spool and one model cache per replica: the spool serves one process (services/serve/spool.py).
  SERVE_PORT="$port" SPOOL_DIR="$home/spool" MODEL_CACHE_DIR="$home/model-cache" \
    REPLICA_ID="${PROD_REPLICA_PREFIX:-$(hostname -s)}-$part" \
    launch "$part" "$ROOT/scripts/serve.sh"
  wait_healthy "$part" 120
}

start_nginx() {
  local dir="$PROD_DIR/nginx" port servers=""
  check_ports_free "nginx=$LB_PORT"
  mkdir -p "$dir"
  # The shared nginx.conf (docker-compose-serve.yaml mounts the same file); what differs per host is in
  # the two files it includes from its own folder: the replicas' addresses and the listen address.
  cp "$ROOT/deploy/nginx/nginx.conf" "$dir/nginx.conf"
  for port in "${REPLICA_PORTS[@]}"; do servers+="  server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'; done
  printf '# Written by scripts/prod.sh\nupstream api {\n%s  keepalive 32;\n}\n' "$servers" > "$dir/upstream.conf"
  printf '# Written by scripts/prod.sh\nlisten 127.0.0.1:%s;\n' "$LB_PORT" > "$dir/listen.conf"
  nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$LOGS/nginx-error.log" -g "pid $RUN/nginx.master.pid;"
  launch nginx nginx -p "$dir" -c "$dir/nginx.conf" -e "$LOGS/nginx-error.log" \
    -g "daemon off; pid $RUN/nginx.master.pid;"
  wait_healthy nginx 20
}

start_ui() {
  check_ports_free "ui=$UI_PORT"
  UI_PORT="$UI_PORT" launch ui "$ROOT/scripts/ui.sh"
  wait_healthy ui 90
}
