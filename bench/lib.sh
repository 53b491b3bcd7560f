# Shared helpers of the benchmark scripts (sourced). The caller sets MASTER and WORK.
# Every process started here is recorded in PIDS and stopped by PID in cleanup (SIGTERM, then
# SIGKILL after 10 s); every wait is bounded.
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port on 127.0.0.1 nobody listens on right now, below the kernel's ephemeral range: a port in
# that range can become some outgoing connection's source port between this check and the bind
# (a bench run failed so: "Address already in use").
free_port() {
  local low p base=10000 span
  low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  span=$((low - base))
  if [ "$span" -lt 1000 ]; then base=20000; span=40000; fi
  for _ in $(seq 100); do
    p=$((base + RANDOM % span))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  echo "bench: no free port found" >&2
  return 1
}

# start NAME GPORT HPORT [flags...]: a tandem-master with data in $WORK/NAME and its log in
# $WORK/NAME.log; waits until both ports answer (bounded: 600 x 0.1 s, a large recovery included).
start() {
  local name="$1" gport="$2" hport="$3"
  shift 3
  "$MASTER" --listen "127.0.0.1:$gport" --http "127.0.0.1:$hport" --data-dir "$WORK/$name" \
    --node-id "$name" --log-level warn "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do
    port_in_use "$gport" && port_in_use "$hport" && return 0
    sleep 0.1
  done
  echo "bench: $name not ready" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}
