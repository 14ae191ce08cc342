#!/usr/bin/env bash
# Fan-out in rooms of 100 (DESIGN.md §8's workload): a default `chorus serve` pinned to
# core 0, the bot swarm pinned to core 1. Extra arguments go to `chorus bots`.
# Usage: bench/bots_fanout.sh [--rate 1000] [--duration 20] ...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
chorus="$root/.venv/bin/chorus"
work="$(mktemp -d -t chorus-bench-XXXXXX)"
cd "$work"
pin_server=() pin_swarm=()
if command -v taskset >/dev/null && (($(nproc) > 1)); then
  pin_server=(taskset -c 0) pin_swarm=(taskset -c 1)
fi
"${pin_server[@]}" "$chorus" serve >server.log 2>&1 &
server=$!
trap 'kill -INT $server; wait $server || true' EXIT
for _ in $(seq 50); do grep -q "is serving" server.log && break; sleep 0.1; done
"${pin_swarm[@]}" "$chorus" bots --server-pid "$server" \
  --bots 1000 --rooms 10 --room-size 100 --rate 1000 --size 100 \
  --duration 20 --ramp-up 5 --passive 0.5 --workers 1 \
  --json-file "$work/report.json" --report "$work/report.html" "$@"
echo "reports: $work/report.json $work/report.html"
