#!/usr/bin/env bash
# Snapshots, WAL and cold start (issue 5); prints a markdown table (and appends it to
# bench/RESULTS.md unless BENCH_RESULTS=/dev/null).
#   bench/snapshot.sh [BUILD_DIR]
#   env: SNAP_OBJECTS (default 1000000), WAL_TAIL_KEYS (puts after the snapshot, 2 entries each;
#        default 50000), BENCH_SECONDS (per latency window, default 3), SNAP_WINDOWS (latency
#        window pairs, default 8), SNAP_MASTER_FLAGS (extra
#        tandem-master flags for rows 2-3, e.g. "--snapshot-priority low")
# Rows:
#  1. library: snapshot write / load of SNAP_OBJECTS objects and a cold start from that snapshot
#     plus a 100 k-entry WAL tail (tests/unit/snapshot/snapshot_timing, no network).
#  2. tandem-master: SNAP_OBJECTS objects loaded over gRPC; then (after row 3, on the same node)
#     `tandemctl snapshot` (size, time; no client load, so not paced), WAL_TAIL_KEYS more puts, kill -9
#     and restart: recovery seconds (from /status) and time until the node answers again; then
#     one unpaced `tandemctl snapshot` on the restarted node (--snapshot-write-mib-per-s 0).
#  3. client get latency (4 threads, pipelined) on the node the load filled: SNAP_WINDOWS pairs of
#     windows without and during back-to-back snapshots of the whole store (tandemctl snapshot in
#     a loop); medians compared.
#  4. put throughput with --wal-fsync always / interval / never (4 threads, pipelined).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${1:-$ROOT/build}" && pwd)"
MASTER="$BUILD_DIR/tandem-master"
BENCH="$BUILD_DIR/tandem-bench"
CTL="$BUILD_DIR/tandemctl"
TIMING="$BUILD_DIR/tests/unit/snapshot/snapshot_timing"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
OBJECTS="${SNAP_OBJECTS:-1000000}"
TAIL_KEYS="${WAL_TAIL_KEYS:-50000}"
RUN_SECONDS="${BENCH_SECONDS:-3}"
WINDOWS="${SNAP_WINDOWS:-8}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tandem-snap-bench.XXXXXX")"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

for bin in "$MASTER" "$BENCH" "$CTL" "$TIMING"; do
  [ -x "$bin" ] || { echo "snapshot bench: $bin not built" >&2; exit 1; }
done

now() { date +%s.%N; }
json_field() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }

echo "snapshot bench: load $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc), $OBJECTS objects" >&2

# ---- 1. library timings ----
echo "snapshot bench: library timings (snapshot_timing $OBJECTS)..." >&2
lib="$("$TIMING" "$OBJECTS" "$WORK/lib" 100000 2>/dev/null || true)"
echo "$lib" >&2
rm -rf "$WORK/lib"

# ---- 2. tandem-master: load ----
gp="$(free_port)"; hp="$(free_port)"
start node "$gp" "$hp" --snapshot-interval-s 0 ${SNAP_MASTER_FLAGS:-}
echo "snapshot bench: loading $OBJECTS objects..." >&2
t0="$(now)"
"$BENCH" --master "127.0.0.1:$gp" --op load --keys "$OBJECTS" --batch 512 --threads 2 \
  --segments 16 --value-size 4096 --no-cleanup --tsv >"$WORK/load.tsv"
load_s="$(printf '%.2f' "$(echo "$(now) - $t0" | bc)")"

# ---- 3. get latency without / during snapshots, on the node the load filled ----
# Measured before the restart below: a node filled by gRPC puts has its objects scattered over a
# larger heap (as a long-running primary does), which makes a snapshot cost it more than it costs
# a node recovered from a snapshot.
# SNAP_WINDOWS alternating pairs of BENCH_SECONDS windows: a baseline window (a `tandemctl status`
# every 1.8 s, so both windows carry the same client-process churn) and a window taken entirely
# during back-to-back snapshots; the ratio compares the medians of the per-window p99s (single
# windows on a small VM vary by 2x on their own).
get_run() {
  "$BENCH" --master "127.0.0.1:$gp" --op get --threads 4 --seconds "$RUN_SECONDS" --warmup-s 0.5 \
    --keys 20000 --segments 2 --tsv
}
background() {  # background CMD...: runs CMD in a loop until $WORK/stop exists (bounded)
  rm -f "$WORK/stop"
  ( for _ in $(seq 1000); do [ -e "$WORK/stop" ] && break; "$@" || true; done ) &
  bg_pid=$!
  sleep 0.3
}
status_tick() { "$CTL" --master "127.0.0.1:$gp" --json status >/dev/null 2>&1; sleep 1.8; }
snapshot_once() {
  "$CTL" --master "127.0.0.1:$gp" --timeout-ms 120000 --json snapshot >>"$WORK/snaps.log" 2>&1
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
: >"$WORK/snaps.log"
base_p99=(); during_p99=(); base_ops=(); during_ops=()
for w in $(seq "$WINDOWS"); do
  echo "snapshot bench: latency window pair $w/$WINDOWS..." >&2
  background status_tick
  line="$(get_run)"; base_p99+=("$(cut -f7 <<<"$line")"); base_ops+=("$(cut -f4 <<<"$line")")
  touch "$WORK/stop"; wait "$bg_pid" 2>/dev/null || true
  background snapshot_once
  line="$(get_run)"; during_p99+=("$(cut -f7 <<<"$line")"); during_ops+=("$(cut -f4 <<<"$line")")
  touch "$WORK/stop"; wait "$bg_pid" 2>/dev/null || true
done
snaps_during="$(grep -c '"id"' "$WORK/snaps.log" || true)"
snap_seconds="$(grep -o '"seconds":[0-9.]*' "$WORK/snaps.log" | cut -d: -f2 | sort -n | tr '\n' ' ')"

# ---- 2 (continued). a snapshot, the WAL tail, kill -9, recovery ----
snap_json="$("$CTL" --master "127.0.0.1:$gp" --timeout-ms 120000 --json snapshot)"
snap_s="$(printf '%.2f' "$(json_field seconds <<<"$snap_json")")"
snap_bytes="$(json_field bytes <<<"$snap_json")"
snap_objects="$(json_field objects <<<"$snap_json")"
"$BENCH" --master "127.0.0.1:$gp" --op load --keys "$TAIL_KEYS" --batch 64 --threads 2 \
  --segments 1 --no-cleanup --tsv >/dev/null
status="$(curl -s --max-time 5 "127.0.0.1:$hp/status")"
applied="$(json_field applied_seq <<<"$status")"
for _ in $(seq 100); do  # interval mode: durable within 10 ms
  status="$(curl -s --max-time 5 "127.0.0.1:$hp/status")"
  [ "$(grep -o '"durable_seq":[0-9]*' <<<"$status" | cut -d: -f2)" = "$applied" ] && break
  sleep 0.05
done
snap_seq="$(json_field seq <<<"$snap_json")"
tail_entries=$(( applied - snap_seq ))
wal_bytes="$(grep -o '"wal":{[^}]*' <<<"$status" | grep -o '"bytes":[0-9]*' | cut -d: -f2)"
kill -KILL "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()
t0="$(now)"
start node "$gp" "$hp" --snapshot-interval-s 0 --snapshot-write-mib-per-s 0 ${SNAP_MASTER_FLAGS:-}
ready_s="$(printf '%.2f' "$(echo "$(now) - $t0" | bc)")"
status="$(curl -s --max-time 5 "127.0.0.1:$hp/status")"
recovery_s="$(printf '%.2f' "$(grep -o '"recovery":{[^}]*' <<<"$status" | json_field seconds)")"
recovered_seq="$(grep -o '"recovery":{[^}]*' <<<"$status" | json_field seq)"
rss_kb="$(grep VmRSS "/proc/${PIDS[0]}/status" | awk '{print $2}')"
# The restarted node writes unpaced: the time of the write itself, as the library row measures it.
unpaced_json="$("$CTL" --master "127.0.0.1:$gp" --timeout-ms 120000 --json snapshot)"
unpaced_s="$(printf '%.2f' "$(json_field seconds <<<"$unpaced_json")")"
unpaced_objects="$(json_field objects <<<"$unpaced_json")"
cleanup

# ---- 4. put throughput per --wal-fsync mode ----
fsync_rows=()
for mode in always interval never; do
  gp="$(free_port)"; hp="$(free_port)"
  start "fsync-$mode" "$gp" "$hp" --wal-fsync "$mode" --snapshot-interval-s 0
  line="$("$BENCH" --master "127.0.0.1:$gp" --op put --threads 4 --seconds 6 \
    --warmup-s 1 --segments 2 --tsv)"
  fsync_rows+=("$(awk -F'\t' -v m="$mode" '{printf "| put, --wal-fsync %s | %s ops/s | p50 %s µs, p99 %s µs |", m,$4,$6,$7}' <<<"$line")")
  cleanup
done

p99_base="$(median "${base_p99[@]}")"
p99_during="$(median "${during_p99[@]}")"
ratio="$(printf '%.2f' "$(echo "scale=3; $p99_during / $p99_base" | bc)")"

table="$(
  echo "### Snapshots, WAL and cold start — $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Command: \`bench/snapshot.sh $BUILD_DIR\` (SNAP_OBJECTS=$OBJECTS, WAL_TAIL_KEYS=$TAIL_KEYS,"
  echo "BENCH_SECONDS=$RUN_SECONDS, SNAP_WINDOWS=$WINDOWS, SNAP_MASTER_FLAGS='${SNAP_MASTER_FLAGS:-}')."
  echo "tandem-master with --wal-fsync interval unless stated."
  echo
  echo "| measurement | value | detail |"
  echo "|---|---|---|"
  echo "| load $OBJECTS objects over gRPC (batch 512, 2 threads) | ${load_s} s | |"
  echo "| \`tandemctl snapshot\` of $snap_objects objects, default flags, no client load (unpaced: idle node) | ${snap_s} s | $snap_bytes bytes |"
  echo "| \`tandemctl snapshot\` of $unpaced_objects objects, unpaced, after the restart | ${unpaced_s} s | --snapshot-write-mib-per-s 0 |"
  echo "| cold start after kill -9: snapshot + WAL tail | ${recovery_s} s (recovery) | $tail_entries WAL entries ($wal_bytes WAL bytes), recovered seq $recovered_seq; ${ready_s} s until ready; RSS $((rss_kb / 1024)) MiB |"
  echo "| get p99, no snapshot (4 threads, on the node the load filled; median of $WINDOWS windows) | ${p99_base} µs | per window: ${base_p99[*]} µs; ops/s ${base_ops[*]} |"
  echo "| get p99, snapshots back to back (median of $WINDOWS windows) | ${p99_during} µs | per window: ${during_p99[*]} µs; ops/s ${during_ops[*]}; $snaps_during snapshots, seconds each: ${snap_seconds}|"
  echo "| p99 during / baseline | ${ratio}x | target <= 2x |"
  printf '%s\n' "${fsync_rows[@]}"
  echo
  echo "Library timings (snapshot_timing $OBJECTS objects, 100 k-entry WAL tail, no network):"
  echo
  echo '```'
  echo "$lib"
  echo '```'
  echo
)"
printf '%s\n\n' "$table" >>"$RESULTS"
echo "$table"
