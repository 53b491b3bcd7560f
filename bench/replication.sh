#!/usr/bin/env bash
# Replication overhead and lag: the same load against a standalone master, a primary with one
# async standby, and a primary with one sync standby; prints a markdown table (and appends it to
# bench/RESULTS.md unless BENCH_RESULTS=/dev/null).
#   bench/replication.sh [BUILD_DIR]   (env: BENCH_SECONDS per cell, default 4; BENCH_ROUNDS, 3)
# Lag is sampled from the primary's /status (standbys[0].lag_entries / lag_ms) every 100 ms
# while the load runs. Rows: single-key put, mixed (80 % get), batch-128 put; for the async
# standby also single-key put paced at half of the closed-loop peak (the lag target's load).
# A second table gives each round's async and sync ops/s over that round's standalone ops/s
# (median and range over the rounds): the throughput targets are read there.
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
ROUNDS="${BENCH_ROUNDS:-3}"
# Cells: op, batch, client threads. Enough requests in flight to saturate the master (a closed
# loop of 4 single-key requests measured the round trip, not the throughput: sync mode then
# looked 2x slower only because each request waits longer).
CELLS=("put 1 128" "mixed 1 128" "put 128 16")
# Per setup and cell, over all rounds: BASE.tsv (tandem-bench lines), BASE.lag_entries/lag_ms.
cell_base() { echo "$WORK/cell.$1.$2.$3"; }  # MODE OP BATCH

# run_setup MODE: MODE is standalone | async | sync; one pass over every cell.
run_setup() {
  local mode="$1"
  local gp hp sgp shp
  gp="$(free_port)"; hp="$(free_port)"
  if [ "$mode" = standalone ]; then
    start "$mode-p" "$gp" "$hp"
  else
    start "$mode-p" "$gp" "$hp" --role primary --replication "$mode"
    sgp="$(free_port)"; shp="$(free_port)"
    start "$mode-s" "$sgp" "$shp" --role standby --primary "127.0.0.1:$gp"
  fi
  for cell in "${CELLS[@]}"; do
    set -- $cell
    local base
    base="$(cell_base "$mode" "$1" "$2")"
    measure "$gp" "$hp" "$base" --op "$1" --batch "$2" --threads "$3"
    if [ "$mode" = async ] && [ "$1" = put ] && [ "$2" = 1 ]; then
      # Single-key puts paced at half of this round's async peak (the lag target's load).
      local half
      half="$(tail -1 "$base.tsv" | awk -F'\t' '{printf "%d", $4 / 2}')"
      echo "$half" >>"$WORK/cell.async.paced.rate"
      measure "$gp" "$hp" "$WORK/cell.async.paced" --op put --batch 1 --threads 16 --rate "$half"
    fi
  done
  cleanup
}

# measure GPORT HPORT BASE BENCH_FLAGS...: one cell; appends to BASE.tsv and the lag files.
measure() {
  local gp="$1" hp="$2" base="$3" sampler=""
  shift 3
  # A standby still applying the previous cell's backlog would count it against this one.
  for _ in $(seq 600); do  # bounded: 60 s
    curl -s --max-time 1 "127.0.0.1:$hp/status" | grep -q '"lag_entries":[1-9]' || break
    sleep 0.1
  done
  # Sampled in every setup (standalone too), so its CPU cost (a curl every 100 ms) is the
  # same in every row.
  sample_lag "$hp" "$WORK/lag" & sampler=$!
  "$BENCH" --master "127.0.0.1:$gp" "$@" --seconds "$RUN_SECONDS" --warmup-s 1 --keys 50000 \
    --segments 4 --tsv >>"$base.tsv"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  cat "$WORK/lag.entries" >>"$base.lag_entries"; cat "$WORK/lag.ms" >>"$base.lag_ms"
}

# row LABEL BASE WITH_LAG: the round with the median ops/s, the spread of all rounds, and the
# lag percentiles over every round's samples.
row() {
  local label="$1" base="$2" with_lag="$3" median spread lag=" - | - | - | - |"
  median="$(sort -t$'\t' -k4,4n "$base.tsv" | awk 'NR==1{n=0} {l[++n]=$0} END{print l[int((n+1)/2)]}')"
  spread="$(awk -F'\t' 'NR==1{lo=$4; hi=$4} {if ($4<lo) lo=$4; if ($4>hi) hi=$4} END{printf "%d-%d", lo, hi}' "$base.tsv")"
  if [ "$with_lag" = yes ]; then
    lag=" $(percentile 50 "$base.lag_entries") | $(percentile 99 "$base.lag_entries") | $(percentile 50 "$base.lag_ms") | $(percentile 99 "$base.lag_ms") |"
  fi
  awk -F'\t' -v s="$label" -v r="$spread" '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |", s,$1,$2,$3,$4,r,$5,$6,$7}' <<<"$median"
  echo "$lag"
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
    # At least the seq the primary had when the standby started: the primary may append a few
    # entries meanwhile (the load client's expiry), which an equality test would wait out.
    if [ "${sseq:-0}" -ge "$pseq" ] && [ "$state" = streaming ]; then break; fi
    sleep 0.05
  done
  t1="$(date +%s.%N)"
  local objects
  objects="$(grep -o '"object_count":[0-9]*' <<<"$sstatus" | head -1 | cut -d: -f2)"
  full_sync_line="Full sync: a new standby of a primary with ${objects:-?} objects (seq $pseq) streams caught up $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s after its process started (includes process start; state: ${state:-?}, seq ${sseq:-?})."
  cleanup
}

# Rounds interleave the setups, so a slow spell of the shared machine hits all of them alike;
# every other round runs them in reverse, so no setup always follows the same one.
for r in $(seq "$ROUNDS"); do
  order="standalone async sync"
  [ $((r % 2)) -eq 0 ] && order="sync async standalone"
  for mode in $order; do run_setup "$mode"; done
done

# paired MODE OP BATCH: per round, MODE's ops/s over standalone's in the same round; prints the
# median and the range. The range shows how far one round's comparison can be trusted on the
# machine at hand (on the 2-core VM of bench/RESULTS.md it spans 0.7x-1.4x).
paired() {
  awk -F'\t' 'NR==FNR {s[FNR]=$4; next} s[FNR] > 0 {printf "%.2f\n", $4 / s[FNR]}' \
    "$(cell_base standalone "$2" "$3").tsv" "$(cell_base "$1" "$2" "$3").tsv" | sort -n |
    awk '{v[NR]=$1} END {if (NR) printf "%.0f %% (%.0f-%.0f %%)", v[int((NR+1)/2)]*100, v[1]*100, v[NR]*100; else printf "-"}'
}
rows=()  # BENCH_ROUNDS=0: the full sync alone
declare -A LABEL=([standalone]="standalone" [async]="primary + async standby" [sync]="primary + sync standby")
for mode in standalone async sync; do
  [ "$ROUNDS" -gt 0 ] || break
  for cell in "${CELLS[@]}"; do
    set -- $cell
    base="$(cell_base "$mode" "$1" "$2")"
    rows+=("$(row "${LABEL[$mode]}" "$base" "$([ "$mode" = standalone ] && echo no || echo yes)")")
  done
  if [ "$mode" = async ]; then
    rates="$(paste -sd/ "$WORK/cell.async.paced.rate")"
    rows+=("$(row "primary + async standby, paced at $rates ops/s (half of each round's peak)" "$WORK/cell.async.paced" yes)")
  fi
done
ratio_rows=()
if [ "$ROUNDS" -gt 0 ]; then
  for cell in "${CELLS[@]}"; do
    set -- $cell
    ratio_rows+=("| $1 | $2 | $3 | $(paired async "$1" "$2") | $(paired sync "$1" "$2") |")
  done
fi
full_sync "$FULL_SYNC_OBJECTS"

table="$(
  echo "### Replication overhead — $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc)"
  echo
  echo "Command: \`bench/replication.sh\` ($ROUNDS rounds interleaving the setups, ${RUN_SECONDS} s per"
  echo "cell; each row is the round with the median ops/s, with the range over all rounds; single-key"
  echo "ops on the client's pipelined streams; lag sampled from the primary's /status every 100 ms"
  echo "during the load, percentiles over every round). Load average at the start: $LOAD_AT_START."
  echo
  echo "| setup | op | batch | threads | ops/s | ops/s range | keys/s | p50 µs | p99 µs | lag p50 entries | lag p99 entries | lag p50 ms | lag p99 ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Per-round paired ratios (each round's async or sync ops/s over its own standalone ops/s;"
  echo "median of $ROUNDS rounds, range in brackets). Targets: async >= 90 %, sync >= 70 %."
  echo
  echo "| op | batch | threads | async / standalone | sync / standalone |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${ratio_rows[@]}"
  echo
  echo "$full_sync_line"
  echo
)"
printf '%s\n\n' "$table" >>"$RESULTS"
echo "$table"
