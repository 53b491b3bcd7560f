#!/usr/bin/env bash
# Failover benchmark (issue 4): N trials (default 20) each of kill -9 of the leader (sync and
# async replication) and of planned switchover (Handover RPC = tandemctl failover), under a
# continuous write load, on one etcd + three tandem-master processes on 127.0.0.1.
#   bench/failover.sh [BUILD_DIR] [TRIALS]
#   (env RUNS="kill:sync switchover:async" picks the rows; default: all four)
# Prints per-trial lines and a table: RTO (fault -> first write acknowledged by the new leader)
# min/p50/p99/max, acknowledged writes lost, requests failed after the client's retries.
set -euo pipefail
BUILD_DIR="${1:-build}"
TRIALS="${2:-20}"
BIN="$BUILD_DIR/tandem-failover-bench"
[ -x "$BIN" ] || { echo "failover.sh: $BIN not built (make build)" >&2; exit 1; }
summaries=()
for run in ${RUNS:-kill:sync kill:async switchover:async switchover:sync}; do
  set -- ${run/:/ }
  echo "== $1, $2 replication, $TRIALS trials"
  out=$("$BIN" --fault "$1" --mode "$2" --trials "$TRIALS" | tee /dev/stderr)
  summaries+=("$(grep '^SUMMARY' <<<"$out")")
done
echo
printf '| %-10s | %-5s | %6s | %6s | %6s | %6s | %6s | %-22s | %-6s |\n' fault mode trials \
  "min ms" "p50 ms" "p99 ms" "max ms" "lost acked (checked)" failed
printf '|%s|\n' "------------|-------|--------|--------|--------|--------|--------|------------------------|--------"
for s in "${summaries[@]}"; do
  fault=$(sed -E 's/.*fault=([^ ]+).*/\1/' <<<"$s"); mode=$(sed -E 's/.*mode=([^ ]+).*/\1/' <<<"$s")
  trials=$(sed -E 's/.*trials=([^ ]+).*/\1/' <<<"$s")
  min=$(sed -E 's/.*min=([^ ]+).*/\1/' <<<"$s"); p50=$(sed -E 's/.*p50=([^ ]+).*/\1/' <<<"$s")
  p99=$(sed -E 's/.*p99=([^ ]+).*/\1/' <<<"$s"); max=$(sed -E 's/.*max=([^ ]+).*/\1/' <<<"$s")
  lost=$(sed -E 's/.*lost_acked=([^ ]+) \(of ([^ ]+) checked\).*/\1 (\2)/' <<<"$s")
  failed=$(sed -E 's/.*failed_after_retries=([^ ]+).*/\1/' <<<"$s")
  printf '| %-10s | %-5s | %6s | %6s | %6s | %6s | %6s | %-22s | %-6s |\n' "$fault" "$mode" \
    "$trials" "$min" "$p50" "$p99" "$max" "$lost" "$failed"
done
