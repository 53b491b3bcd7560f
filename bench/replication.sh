#!/usr/bin/env bash
# Replication overhead and lag: the same load against a standalone master, a primary with one
# async standby, and a primary with one sync standby; prints a markdown table (and appends it to
# bench/RESULTS.md unless BENCH_RESULTS=/dev/null).
#   bench/replication.sh [BUILD_DIR]   (env: BENCH_SECONDS per cell, default 4)
# Lag is sampled from the primary's /status (standbys[0].lag_entries / lag_ms) every 100 ms
# while the load runs. Rows: single-key put, mixed (80 % get), batch-128 put; for the async
# standby also single-key put paced at half of the closed-loop peak (the lag target's load).
# Then a full sync: a primary holding FULL_SYNC_OBJECTS (default 1 000 000) objects, a new standby,
# time from its start until it streams at the primary's seq.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${1:-$ROOT/build}" && pwd)"
MASTER="$BUILD_DIR/tandem-master"
BENCH="$BUILD_DIR/tandem-bench"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
RUN_SECONDS="${BENCH_SECONDS:-4}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tandem-repl-bench.XXXXXX")"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# Percentile P (0-100) of the numbers in FILE (one per line); "-" when empty.
percentile() {
  sort -n "$2" | awk -v p="$1" '{v[NR]=$1} END {if (NR==0) {print "-"; exit}
    i=int((p/100)*NR+0.999999); if (i<1) i=1; if (i>NR) i=NR; print v[i]}'
}

# sample_lag HPORT OUT_PREFIX: samples the first standby's lag until killed.
sample_lag() {
  local hport="$1" out="$2"
  : >"$out.entries"; : >"$out.ms"
  for _ in $(seq 600); do  # bounded: 600 x 100 ms = 60 s
    status="$(curl -s --max-time 1 "127.0.0.1:$hport/status" || true)"
    grep -o '"lag_entries":[0-9]*' <<<"$status" | head -1 | cut -d: -f2 >>"$out.entries" || true
    grep -o '"lag_ms":[0-9]*' <<<"$status" | head -1 | cut -d: -f2 >>"$out.ms" || true
    sleep 0.1
  done
}

LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
# run_setup LABEL MODE: MODE is standalone | async | sync.
run_setup() {
  local label="$1" mode="$2"
  local gp hp sgp shp
  gp="$(free_port)"; hp="$(free_port)"
  if [ "$mode" = standalone ]; then
    start "$mode-p" "$gp" "$hp"
  else
    start "$mode-p" "$gp" "$hp" --role primary --replication "$mode"
    sgp="$(free_port)"; shp="$(free_port)"
    start "$mode-s" "$sgp" "$shp" --role standby --primary "127.0.0.1:$gp"
  fi
  for cell in "put 1" "mixed 1" "put 128"; do
    set -- $cell
    local op="$1" batch="$2" sampler="" line
    # Sampled in every setup (standalone too), so its CPU cost (a curl every 100 ms) is the
    # same in every row; at 20 ms it had cost the replicated rows a visible share of 2 cores.
    sample_lag "$hp" "$WORK/lag" & sampler=$!
    line="$("$BENCH" --master "127.0.0.1:$gp" --op "$op" --batch "$batch" --threads 4 \
      --seconds "$RUN_SECONDS" --warmup-s 1 --keys 50000 --segments 4 --tsv)"
    local lag=" - | - | - | - |"
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    if [ "$mode" != standalone ]; then
      lag=" $(percentile 50 "$WORK/lag.entries") | $(percentile 99 "$WORK/lag.entries") | $(percentile 50 "$WORK/lag.ms") | $(percentile 99 "$WORK/lag.ms") |"
    fi
    rows+=("$(awk -F'\t' -v s="$label" '{printf "| %s | %s | %s | %s | %s | %s | %s |", s,$1,$2,$4,$5,$6,$7}' <<<"$line") $lag")
    if [ "$mode" = async ] && [ "$op" = put ] && [ "$batch" = 1 ]; then
      # The same put load paced at half of the peak just measured.
      local half
      half="$(awk -F'\t' '{printf "%d", $4 / 2}' <<<"$line")"
      sample_lag "$hp" "$WORK/lag" & sampler=$!
      line="$("$BENCH" --master "127.0.0.1:$gp" --op put --batch 1 --threads 4 --rate "$half" \
        --seconds "$RUN_SECONDS" --warmup-s 1 --keys 50000 --segments 4 --tsv)"
      kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
      lag=" $(percentile 50 "$WORK/lag.entries") | $(percentile 99 "$WORK/lag.entries") | $(percentile 50 "$WORK/lag.ms") | $(percentile 99 "$WORK/lag.ms") |"
      rows+=("$(awk -F'\t' -v s="$label, paced at $half ops/s" '{printf "| %s | %s | %s | %s | %s | %s | %s |", s,$1,$2,$4,$5,$6,$7}' <<<"$line") $lag")
    fi
  done
  cleanup
}

# full_sync N: a primary with N objects, then a new standby; seconds until it streams caught up.
FULL_SYNC_OBJECTS="${FULL_SYNC_OBJECTS:-1000000}"
full_sync_line=""
full_sync() {
  local n="$1" gp hp sgp shp
  gp="$(free_port)"; hp="$(free_port)"
  start fs-p "$gp" "$hp" --role primary --oplog-buffer-entries 1048576
  "$BENCH" --master "127.0.0.1:$gp" --op load --keys "$n" --batch 128 --threads 4 \
    --segments 4 --value-size 64 --no-cleanup --tsv >/dev/null
  local pstatus pseq
  pstatus="$(curl -s --max-time 5 "127.0.0.1:$hp/status")"
  pseq="$(grep -o '"applied_seq":[0-9]*' <<<"$pstatus" | head -1 | cut -d: -f2)"
  sgp="$(free_port)"; shp="$(free_port)"
  local t0 t1 sstatus sseq state
  t0="$(date +%s.%N)"
  start fs-s "$sgp" "$shp" --role standby --primary "127.0.0.1:$gp"
  for _ in $(seq 1200); do  # bounded: 60 s
    sstatus="$(curl -s --max-time 1 "127.0.0.1:$shp/status" || true)"
    sseq="$(grep -o '"applied_seq":[0-9]*' <<<"$sstatus" | head -1 | cut -d: -f2)"
    state="$(grep -o '"state":"[a-z-]*"' <<<"$sstatus" | head -1 | cut -d'"' -f4)"
    if [ "${sseq:-0}" = "$pseq" ] && [ "$state" = streaming ]; then break; fi
    sleep 0.05
  done
  t1="$(date +%s.%N)"
  local objects
  objects="$(grep -o '"object_count":[0-9]*' <<<"$sstatus" | head -1 | cut -d: -f2)"
  full_sync_line="Full sync: a new standby of a primary with ${objects:-?} objects (seq $pseq) streams caught up $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s after its process started (includes process start; state: ${state:-?}, seq ${sseq:-?})."
  cleanup
}

run_setup standalone standalone
run_setup "primary + async standby" async
run_setup "primary + sync standby" sync
full_sync "$FULL_SYNC_OBJECTS"

table="$(
  echo "### Replication overhead — $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc)"
  echo
  echo "Command: \`bench/replication.sh\` (4 threads, ${RUN_SECONDS} s per cell, pipelined single-key"
  echo "streams or batch 128; lag sampled from the primary's /status every 100 ms during the load,"
  echo "in every setup). Load average at the start: $LOAD_AT_START."
  echo
  echo "| setup | op | batch | ops/s | keys/s | p50 µs | p99 µs | lag p50 entries | lag p99 entries | lag p50 ms | lag p99 ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "$full_sync_line"
  echo
)"
printf '%s\n\n' "$table" >>"$RESULTS"
echo "$table"
