#!/usr/bin/env bash
# `make run`: a local Tandem cluster on loopback, in the foreground -- one etcd and three
# tandem-master nodes (etcd elects one leader; the other two are hot standbys).
#   ./scripts/run-local.sh [BUILD_DIR] [extra tandem-master flags...]
# Ports: etcd 127.0.0.1:23790; node N (1..3) gRPC 127.0.0.1:5005N, HTTP 127.0.0.1:900(2+N).
# Data (etcd in /dev/shm when available, masters under BUILD_DIR/run-local) is removed on the next
# start. Ctrl-C stops every process this script started, by PID. TANDEM_NODES=1 runs one
# standalone master without etcd instead.
set -euo pipefail

BUILD_DIR="${1:-build}"
shift || true
MASTER="$BUILD_DIR/tandem-master"
CLUSTER=local
ETCD_PORT=23790
ETCD_PEER_PORT=23800
RUN_DIR="$BUILD_DIR/run-local"
ETCD_DIR="${TMPDIR_ETCD:-/dev/shm}/tandem-run-local-etcd.$$"
[ -d /dev/shm ] || ETCD_DIR="$RUN_DIR/etcd"

if [ ! -x "$MASTER" ]; then
  echo "run-local: $MASTER not found; build first (make build)" >&2
  exit 1
fi

pids=()
names=()
stop() {
  local rc="${1:-0}"
  trap - INT TERM EXIT
  echo
  # Masters first (the leader hands over, then everyone leaves etcd), etcd last.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    echo "run-local: stopping ${names[$i]} (pid ${pids[$i]})"
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 100); do
      kill -0 "${pids[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -rf "$ETCD_DIR"
  exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

wait_port() {  # host:port pid -- bounded: 10 s
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"

if [ "${TANDEM_NODES:-3}" = 1 ]; then
  "$MASTER" --listen 127.0.0.1:50051 --http 127.0.0.1:9003 --data-dir "$RUN_DIR/node-1" \
    --node-id local-1 "$@" &
  pids+=($!)
  names+=("tandem-master local-1")
  wait_port 127.0.0.1:9003 "${pids[0]}" || { echo "run-local: master failed to start" >&2; exit 1; }
  echo "tandem-master local-1 (standalone): gRPC 127.0.0.1:50051, HTTP http://127.0.0.1:9003/status"
else
  if ! command -v etcd >/dev/null; then
    echo "run-local: etcd not found (apt-get install etcd-server)" >&2
    exit 1
  fi
  rm -rf "$ETCD_DIR"
  # Short raft timings keep a 3 s lease safe across an etcd leader change (docs/decisions.md).
  etcd --name run-local --data-dir "$ETCD_DIR" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "run-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --heartbeat-interval 100 --election-timeout 500 --logger zap --log-outputs "$RUN_DIR/etcd.log" \
    >/dev/null 2>&1 &
  pids+=($!)
  names+=("etcd")
  wait_port "127.0.0.1:$ETCD_PORT" "${pids[0]}" || { echo "run-local: etcd failed to start (see $RUN_DIR/etcd.log)" >&2; exit 1; }
  for n in 1 2 3; do
    "$MASTER" --listen "127.0.0.1:5005$n" --http "127.0.0.1:900$((2 + n))" \
      --data-dir "$RUN_DIR/node-$n" --node-id "node-$n" --cluster-id "$CLUSTER" \
      --etcd-endpoints "127.0.0.1:$ETCD_PORT" "$@" >"$RUN_DIR/node-$n.log" 2>&1 &
    pids+=($!)
    names+=("tandem-master node-$n")
  done
  for n in 1 2 3; do
    wait_port "127.0.0.1:900$((2 + n))" "${pids[$n]}" ||
      { echo "run-local: node-$n failed to start:" >&2; tail -5 "$RUN_DIR/node-$n.log" >&2; exit 1; }
  done
  ETCD_FLAGS="--etcd-endpoints 127.0.0.1:$ETCD_PORT --cluster-id $CLUSTER"
  # Bounded wait (10 s) for a leader, so the examples work right away.
  for _ in $(seq 100); do
    if "$BUILD_DIR/tandemctl" $ETCD_FLAGS status >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  cat <<INFO

Tandem cluster "$CLUSTER" is up (logs in $RUN_DIR):
  etcd     127.0.0.1:$ETCD_PORT (pid ${pids[0]})
  node-1   gRPC 127.0.0.1:50051  HTTP http://127.0.0.1:9003/status  (pid ${pids[1]})
  node-2   gRPC 127.0.0.1:50052  HTTP http://127.0.0.1:9004/status  (pid ${pids[2]})
  node-3   gRPC 127.0.0.1:50053  HTTP http://127.0.0.1:9005/status  (pid ${pids[3]})

Try, in another terminal:
  $BUILD_DIR/tandemctl $ETCD_FLAGS status
  $BUILD_DIR/tandemctl $ETCD_FLAGS mount seg-0 1GiB
  $BUILD_DIR/tandemctl $ETCD_FLAGS put hello 4KiB --replicas 1
  $BUILD_DIR/tandemctl $ETCD_FLAGS --json get hello
  $BUILD_DIR/tandemctl $ETCD_FLAGS failover
  $BUILD_DIR/tandem-bench $ETCD_FLAGS --op get --threads 4 --seconds 5

Ctrl-C stops every process above.
INFO
fi

# Until Ctrl-C, or until any process exits by itself.
set +e
wait -n "${pids[@]}"
rc=$?
echo "run-local: a process exited by itself (code $rc); stopping the rest"
stop "$rc"
