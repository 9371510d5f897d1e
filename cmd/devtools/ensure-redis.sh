#!/usr/bin/env bash
# ensure-redis.sh [install|test-deps|serve]
#   install:   make sure redis-server is installed (Debian package), nothing else.
#   test-deps: also install what the test suite drives: chromium (dashboard tests) and
#              Postfix's smtp-sink (the SMTP pool against a second server implementation;
#              Postfix itself is left unconfigured and not started).
#   serve:   also make sure a Redis answers at $REDIS_ADDR (default 127.0.0.1:6379);
#            if none does, start a local redis-server with AOF under $DATA_DIR/redis.
set -euo pipefail
mode=${1:-install}
addr=${REDIS_ADDR:-127.0.0.1:6379}
data_dir=${DATA_DIR:-./var}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is missing: installing the Debian package redis-server" >&2
  if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
[[ $mode == install ]] && exit 0
if [[ $mode == test-deps ]]; then
  if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium is missing: installing the Debian package chromium (headless dashboard tests)" >&2
    if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  if ! command -v smtp-sink >/dev/null 2>&1 && [[ ! -x /usr/sbin/smtp-sink ]]; then
    echo "smtp-sink is missing: installing the Debian package postfix, unconfigured (SMTP pool tests)" >&2
    if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
    # "No configuration": no main.cf, so no mail server starts on port 25
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postfix >/dev/null
  fi
  exit 0
fi

host=${addr%:*}; port=${addr##*:}
if reply=$(timeout 5 redis-cli -h "$host" -p "$port" ping 2>&1); then
  echo "Redis answers at $addr" >&2
  exit 0
fi
# Something that is not Redis (or a Redis that refuses us) holds the port:
# starting a redis-server there would only fail to bind.
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  echo "$addr is taken by something that does not answer as Redis (redis-cli ping: ${reply:-no reply within 5s});" >&2
  echo "stop it, or use another address: make run REDIS_ADDR=127.0.0.1:6390" >&2
  exit 1
fi
mkdir -p "$data_dir/redis"
dir=$(cd "$data_dir/redis" && pwd)
echo "no Redis at $addr: starting redis-server with AOF in $dir" >&2
redis-server --daemonize yes --bind "$host" --port "$port" --dir "$dir" \
  --appendonly yes --appendfsync everysec --save "" \
  --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
for _ in $(seq 1 100); do
  redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "redis-server did not answer at $addr; see $dir/redis.log" >&2
exit 1
