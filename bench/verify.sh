#!/usr/bin/env bash
# Verification cost (issue 6): a whole pass (`tandemctl verify`, every key of every shard) at
# VERIFY_OBJECTS objects (default 1000000) on a standby, its wall time and the CPU it costs the
# standby and the primary. Prints a markdown table (appended to bench/RESULTS.md unless
# BENCH_RESULTS=/dev/null). Then the effect on client throughput: single-key gets against the
# primary (4 threads, BENCH_SECONDS, default 6) without verification, and with whole passes run
# back to back on the standby the whole time (the worst case; the default rate is 10 % of the
# shards every 30 s, i.e. a whole pass every 5 minutes). Last, that default rate itself: gets
# with a standby verifying at it and with one that does not, alternated (3 rounds).
#   bench/verify.sh [BUILD_DIR]   env: VERIFY_OBJECTS, BENCH_SECONDS, BENCH_RATE_SECONDS, BENCH_RATE_ROUNDS
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${1:-$ROOT/build}" && pwd)"
MASTER="$BUILD_DIR/tandem-master"
BENCH="$BUILD_DIR/tandem-bench"
CTL="$BUILD_DIR/tandemctl"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
OBJECTS="${VERIFY_OBJECTS:-1000000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tandem-verify-bench.XXXXXX")"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

for bin in "$MASTER" "$BENCH" "$CTL"; do
  [ -x "$bin" ] || { echo "verify bench: $bin not built" >&2; exit 1; }
done

now() { date +%s.%N; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }  # utime+stime, 100 Hz
seq_of() { curl -s "127.0.0.1:$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["applied_seq"])'; }

pg="$(free_port)"; ph="$(free_port)"
start primary "$pg" "$ph" --role primary --cluster-id vb --snapshot-interval-s 0
sg="$(free_port)"; sh="$(free_port)"
start standby "$sg" "$sh" --role standby --primary "127.0.0.1:$pg" --cluster-id vb \
  --snapshot-interval-s 0 --verify-interval-s 0
ppid="${PIDS[0]}"; spid="${PIDS[1]}"

echo "verify bench: load $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc), loading $OBJECTS objects..." >&2
"$BENCH" --master "127.0.0.1:$pg" --op load --keys "$OBJECTS" --batch 512 --threads 2 \
  --segments 16 --value-size 4096 --no-cleanup --tsv >"$WORK/load.tsv"
for _ in $(seq 600); do
  [ "$(seq_of "$ph")" = "$(seq_of "$sh")" ] && break
  sleep 0.2
done

pc0="$(cpu_s "$ppid")"; sc0="$(cpu_s "$spid")"; t0="$(now)"
out="$("$CTL" --master "127.0.0.1:$sg" --json verify)"
t1="$(now)"; pc1="$(cpu_s "$ppid")"; sc1="$(cpu_s "$spid")"
echo "$out" >&2
pass_s="$(printf '%.2f' "$(echo "$t1 - $t0" | bc)")"
keys="$(grep -o '"keys_checked":[0-9]*' <<<"$out" | cut -d: -f2)"
status="$(grep -o '"status":"[a-z_]*"' <<<"$out" | cut -d'"' -f4)"
s_cpu="$(echo "$sc1 - $sc0" | bc)"; p_cpu="$(echo "$pc1 - $pc0" | bc)"

{
  echo
  echo "### Verification: a whole pass at $OBJECTS objects ($(date -u +%F), nproc $(nproc))"
  echo
  echo "Command: \`VERIFY_OBJECTS=$OBJECTS bench/verify.sh $BUILD_DIR\` ($(grep -m1 CMAKE_BUILD_TYPE: "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2) build, load $(cut -d' ' -f1 /proc/loadavg))"
  echo
  echo "| objects | keys checked | status | pass wall s | standby CPU s | primary CPU s |"
  echo "|---|---|---|---|---|---|"
  echo "| $OBJECTS | $keys | $status | $pass_s | $s_cpu | $p_cpu |"
} | tee -a "$RESULTS"

# Client throughput without and with continuous verification.
RUN_SECONDS="${BENCH_SECONDS:-6}"
get_run() {
  "$BENCH" --master "127.0.0.1:$pg" --op get --batch 1 --threads 4 --seconds "$RUN_SECONDS" \
    --warmup-s 1 --keys 20000 --segments 4 --value-size 64 --tsv
}
base="$(get_run)"
(for _ in $(seq 1000); do "$CTL" --master "127.0.0.1:$sg" verify >/dev/null 2>&1 || true; done) &
looper=$!
during="$(get_run)"
kill "$looper" 2>/dev/null || true
wait "$looper" 2>/dev/null || true
b_ops="$(cut -f4 <<<"$base")"; d_ops="$(cut -f4 <<<"$during")"
{
  echo
  echo "Client gets on the primary (4 threads, ${RUN_SECONDS} s): $b_ops ops/s (p99 $(cut -f7 <<<"$base") µs) without"
  echo "verification, $d_ops ops/s (p99 $(cut -f7 <<<"$during") µs) with whole passes back to back on the"
  echo "standby: $(awk -v b="$b_ops" -v d="$d_ops" 'BEGIN{printf "%.1f", (b-d)*100/b}') % fewer. At the default rate (a whole pass every ~300 s) the"
  echo "share is about pass time / 300 of that."
} | tee -a "$RESULTS"

# The default rate, measured: 10 % of the shards every 30 s, here in steps ten times finer (1 %
# every 3 s: the same shards, keys and DIGEST work per second, more round trips) so that runs of
# BENCH_RATE_SECONDS (default 20) see several rounds. Standbys with and without it, alternated.
RATE_SECONDS="${BENCH_RATE_SECONDS:-20}"
restart_standby() {  # NAME [flags...]
  local name="$1"
  shift
  kill -TERM "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  sg="$(free_port)"; sh="$(free_port)"
  start "$name" "$sg" "$sh" --role standby --primary "127.0.0.1:$pg" --cluster-id vb \
    --snapshot-interval-s 0 "$@"
  spid="${PIDS[-1]}"
  for _ in $(seq 600); do
    [ "$(seq_of "$ph")" = "$(seq_of "$sh")" ] && return 0
    sleep 0.2
  done
  echo "verify bench: standby $name did not catch up" >&2
  exit 1
}
rounds_of() { curl -s "127.0.0.1:$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("verification", {}).get("rounds", 0))'; }
rate_run() {
  "$BENCH" --master "127.0.0.1:$pg" --op get --batch 1 --threads 4 --seconds "$RATE_SECONDS" \
    --warmup-s 1 --keys 20000 --segments 4 --value-size 64 --tsv
}
rows=""
off_sum=0; on_sum=0
for round in $(seq "${BENCH_RATE_ROUNDS:-3}"); do
  for mode in off on; do
    if [ "$mode" = off ]; then
      restart_standby "s-$mode-$round" --verify-interval-s 0
    else
      restart_standby "s-$mode-$round" --verify-interval-s 3 --verify-sample-ratio 0.01
    fi
    r0="$(rounds_of "$sh")"; pc0="$(cpu_s "$ppid")"; sc0="$(cpu_s "$spid")"
    res="$(rate_run)"
    r1="$(rounds_of "$sh")"; pc1="$(cpu_s "$ppid")"; sc1="$(cpu_s "$spid")"
    ops="$(cut -f4 <<<"$res")"
    if [ "$mode" = off ]; then off_sum="$(echo "$off_sum + $ops" | bc)"; else on_sum="$(echo "$on_sum + $ops" | bc)"; fi
    rows+="| $round | $mode | $((r1 - r0)) | $ops | $(cut -f7 <<<"$res") | $(echo "$pc1 - $pc0" | bc) | $(echo "$sc1 - $sc0" | bc) |"$'\n'
  done
done
{
  echo
  echo "Default verification rate vs none (standby restarted for each run; gets on the primary, 4 threads, ${RATE_SECONDS} s per run, $OBJECTS objects):"
  echo
  echo "| round | verification | rounds in the run | gets ops/s | p99 µs | primary CPU s | standby CPU s |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Mean over the rounds: $(awk -v b="$off_sum" -v d="$on_sum" 'BEGIN{printf "%.1f", (b-d)*100/b}') % fewer gets/s with verification at the default rate."
} | tee -a "$RESULTS"
