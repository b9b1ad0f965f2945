# shellcheck shell=bash
# Sourced by scripts/prod.sh: Redis, Celery's broker (DB 0) and the users' store (DB 1), with a password.

start_redis() {
  local dir="$PROD_DIR/redis"
  check_ports_free "redis=$REDIS_PORT"
  mkdir -p "$dir"
  # The password goes in a config file of mode 600, not on a command line that `ps` shows.
  (umask 077; cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
dir $dir
save 60 1
appendonly no
daemonize no
CONF
)
  launch redis redis-server "$dir/redis.conf"
  wait_healthy redis 20
}
