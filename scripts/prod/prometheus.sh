# shellcheck shell=bash
# Sourced by scripts/prod.sh: Prometheus scraping every replica, with deploy/prometheus/'s config and rules.

start_prometheus() {
  local dir="$PROD_DIR/prometheus" src="$ROOT/deploy/prometheus/prometheus.yml" i targets=()
  if [[ ! -f "$src" ]]; then echo "   prometheus: skipped ($src does not exist)"; return 0; fi
  check_ports_free "prometheus=$PROMETHEUS_PORT"
  mkdir -p "$dir/targets" "$dir/data"
  cp "$src" "$dir/prometheus.yml"
  rm -rf "$dir/rules"
  if [[ -d "$ROOT/deploy/prometheus/rules" ]]; then cp -r "$ROOT/deploy/prometheus/rules" "$dir/rules"; fi
  # The replicas, for the file_sd_configs' relative targets/*.json (compose lists its own).
  for i in "${!REPLICA_PORTS[@]}"; do
    targets+=("{\"targets\": [\"127.0.0.1:${REPLICA_PORTS[$i]}\"], \"labels\": {\"deployment\": \"prod\", \"replica\": \"api-$((i + 1))\"}}")
  done
  printf '[%s]\n' "$(IFS=,; echo "${targets[*]}")" > "$dir/targets/api.json"
  promtool check config "$dir/prometheus.yml" > "$LOGS/promtool.log" 2>&1 \
    || { echo "   promtool rejects the config:" >&2; tail -n 10 "$LOGS/promtool.log" >&2; return 1; }
  launch prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_healthy prometheus 30
}
