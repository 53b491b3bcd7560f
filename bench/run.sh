#!/usr/bin/env bash
# Runs the fixed benchmark matrix against a fresh standalone tandem-master and appends a table to
# bench/RESULTS.md (created with a header if missing), then prints it.
#   bench/run.sh [BUILD_DIR]   (env: BENCH_SECONDS=N per cell, default 4; BENCH_RESULTS=FILE)
# Matrix: op put|get|exist|mixed x batch 1|128, 4 threads, 4 KiB values, 1 replica. Then the
# master's memory per object: VmRSS before/after putting 1 M short keys (batched), once with the
# default OpLog window and once with a tiny one (metadata alone). Whole run: ~2 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${1:-$ROOT/build}" && pwd)"
MASTER="$BUILD_DIR/tandem-master"
BENCH="$BUILD_DIR/tandem-bench"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
RUN_SECONDS="${BENCH_SECONDS:-4}"
THREADS=4
MEMORY_KEYS=1000000

for bin in "$MASTER" "$BENCH"; do
  [ -x "$bin" ] || { echo "bench: $bin not found; build first" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # port_in_use, free_port (its cleanup is replaced below)
MASTER_PID=""

stop_master() {
  [ -n "$MASTER_PID" ] || return 0
  kill -TERM "$MASTER_PID" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$MASTER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$MASTER_PID" 2>/dev/null || true
  wait "$MASTER_PID" 2>/dev/null || true
  MASTER_PID=""
}
cleanup() {
  stop_master
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# start_master NAME [extra flags...]: sets MASTER_PID and MASTER_ADDR, waits until ready (5 s).
start_master() {
  local name="$1"; shift
  local gport hport
  gport="$(free_port)"; hport="$(free_port)"
  MASTER_ADDR="127.0.0.1:$gport"
  "$MASTER" --listen "$MASTER_ADDR" --http "127.0.0.1:$hport" --data-dir "$WORK/$name" \
    --node-id "bench-$name" --log-level warn "$@" >"$WORK/$name.log" 2>&1 &
  MASTER_PID=$!
  for _ in $(seq 100); do
    if ! kill -0 "$MASTER_PID" 2>/dev/null; then
      echo "bench: tandem-master exited at start-up:" >&2; cat "$WORK/$name.log" >&2; exit 1
    fi
    port_in_use "$gport" && port_in_use "$hport" && return 0
    sleep 0.05
  done
  echo "bench: tandem-master not ready after 5 s" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$MASTER_PID/status"; }

# measure_memory NAME [master flags...]: puts MEMORY_KEYS objects into a fresh master; sets
# MEM_KIB (VmRSS growth) and MEM_BPO (bytes per object).
measure_memory() {
  local name="$1"; shift
  start_master "$name" "$@"
  local before after
  before="$(rss_kib)"
  "$BENCH" --master "$MASTER_ADDR" --op load --keys "$MEMORY_KEYS" --batch 128 \
    --threads "$THREADS" --segments 4 --value-size 4096 --replicas 1 --no-cleanup --tsv >/dev/null
  sleep 0.5
  after="$(rss_kib)"
  stop_master
  MEM_KIB=$(( after - before ))
  MEM_BPO=$(( MEM_KIB * 1024 / MEMORY_KEYS ))
}

BENCH_ARGS=(--threads "$THREADS" --seconds "$RUN_SECONDS" --warmup-s 1 --keys 100000
            --segments 4 --value-size 4096 --replicas 1)
rows=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
start_master matrix
for op in put get exist mixed; do
  for batch in 1 128; do
    echo "bench: op=$op batch=$batch ..." >&2
    line="$("$BENCH" --master "$MASTER_ADDR" --op "$op" --batch "$batch" "${BENCH_ARGS[@]}" --tsv)"
    # TSV: op batch threads ops/s keys/s p50 p99 p999 errors
    rows+=("$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |", $1,$2,$3,$4,$5,$6,$7,$8,$9}' <<<"$line")")
  done
done
stop_master

echo "bench: memory, $MEMORY_KEYS objects ..." >&2
measure_memory mem-default
mem_default_kib=$MEM_KIB mem_default_bpo=$MEM_BPO
measure_memory mem-small --oplog-buffer-entries 1000
mem_small_kib=$MEM_KIB mem_small_bpo=$MEM_BPO

cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
table="$(
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — nproc $(nproc), ${cpu:-unknown CPU}"
  echo
  echo "Load average before the run: $load_before (other work on the machine skews the numbers)."
  echo
  echo "Command: \`bench/run.sh\` → \`tandem-bench --op OP --batch B ${BENCH_ARGS[*]}\`"
  echo "(single-key ops use the client's pipelined streams; a put is PutStart+PutEnd; µs per request)"
  echo
  echo "| op | batch | threads | ops/s | keys/s | p50 µs | p99 µs | p999 µs | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Memory: $MEMORY_KEYS objects (keys ~15 B, 4 KiB values, 1 replica), master VmRSS growth:"
  echo "$(( mem_default_kib / 1024 )) MiB = **$mem_default_bpo bytes/object** with the default OpLog window;" \
       "$(( mem_small_kib / 1024 )) MiB = **$mem_small_bpo bytes/object** with --oplog-buffer-entries 1000 (metadata alone)."
  echo
)"

if [ ! -f "$RESULTS" ]; then
  printf '# Benchmark results\n\nAppended by `bench/run.sh` (see bench/README.md); newest last.\n\n' >"$RESULTS"
fi
printf '%s\n\n' "$table" >>"$RESULTS"
echo "$table"
