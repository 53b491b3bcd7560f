#!/usr/bin/env bash
# The fault-injection campaign (issue 7): real etcd (3 members) + 3 tandem-master processes on
# 127.0.0.1 per trial, one fault per trial, history checks after healing.
#
#   tests/chaos/run.sh [--trials N] [--fault F[,F...]|all] [--mode sync|async] [--report FILE]
#
# Faults: kill-primary kill-standby pause-primary restart-all kill-etcd-leader pause-etcd
#         partition-primary slow-standby corrupt-snapshot (default: all).
# Exits non-zero when a check is violated; the last line is a one-line summary.
# TANDEM_BUILD_DIR (default: <repo>/build) is where tandem-chaos and tandem-master are built.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TANDEM_BUILD_DIR:-$root/build}
if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  echo "run.sh: no build in $build; run 'make build' first (or set TANDEM_BUILD_DIR)" >&2
  exit 2
fi
cmake --build "$build" --target tandem-chaos tandem-master >/dev/null
exec "$build/tandem-chaos" "$@"
