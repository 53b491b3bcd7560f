#!/usr/bin/env bash
# Starts one standalone tandem-master in the foreground for local use (`make run`).
#   ./scripts/run-local.sh [BUILD_DIR] [extra tandem-master flags...]
# Listens on 127.0.0.1:50051 (gRPC) and 127.0.0.1:9003 (HTTP) unless TANDEM_LISTEN /
# TANDEM_HTTP say otherwise; data under BUILD_DIR/run-local. Ctrl-C stops the master (by PID).
set -euo pipefail

BUILD_DIR="${1:-build}"
shift || true
MASTER="$BUILD_DIR/tandem-master"
LISTEN="${TANDEM_LISTEN:-127.0.0.1:50051}"
HTTP="${TANDEM_HTTP:-127.0.0.1:9003}"
DATA_DIR="$BUILD_DIR/run-local/data"

if [ ! -x "$MASTER" ]; then
  echo "run-local: $MASTER not found; build first (make build)" >&2
  exit 1
fi
mkdir -p "$DATA_DIR"

"$MASTER" --listen "$LISTEN" --http "$HTTP" --data-dir "$DATA_DIR" --node-id local-1 "$@" &
pid=$!

stop() {
  trap - INT TERM
  echo
  echo "run-local: stopping tandem-master (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

# Wait (bounded: 5 s) until the HTTP endpoint answers, so the examples below work right away.
ready=no
for _ in $(seq 100); do
  kill -0 "$pid" 2>/dev/null || break
  if (exec 3<>"/dev/tcp/${HTTP%:*}/${HTTP##*:}") 2>/dev/null; then ready=yes; break; fi
  sleep 0.05
done
if ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid" || rc=$?
  echo "run-local: tandem-master exited during start-up (code ${rc:-0})" >&2
  exit "${rc:-1}"
fi

cat <<INFO

tandem-master (pid $pid) $( [ "$ready" = yes ] && echo "is up" || echo "is starting" ):
  gRPC   $LISTEN        HTTP  http://$HTTP/{metrics,healthz,readyz,status}
  data   $DATA_DIR

Try, in another terminal:
  $BUILD_DIR/tandemctl --master $LISTEN mount seg-0 1GiB
  $BUILD_DIR/tandemctl --master $LISTEN put hello 4KiB --replicas 1
  $BUILD_DIR/tandemctl --master $LISTEN --json get hello
  $BUILD_DIR/tandemctl --master $LISTEN status
  curl -s http://$HTTP/status
  $BUILD_DIR/tandem-bench --master $LISTEN --op get --threads 4 --seconds 5

Ctrl-C stops the master.
INFO

set +e
wait "$pid"
rc=$?
# Reached only when the master exits by itself (the trap handles Ctrl-C).
echo "run-local: tandem-master exited (code $rc)"
exit "$rc"
