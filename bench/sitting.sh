#!/usr/bin/env bash
# A before/after sitting: bench/run.py's scenarios, two trees alternating, in one go.
#
# Usage: bench/sitting.sh OUT BEFORE_TREE ROUNDS SCENARIO...
#
# "after" is this checkout; "before" is another tree of the code (e.g.
# `git archive START | tar -x -C /tmp/before`) run by this checkout's
# bench/run.py and venv with PYTHONPATH=BEFORE_TREE (the nodes it starts
# inherit it). Each round runs every scenario once per tree, the trees'
# order alternating by round, so that a drift of the machine's load falls on
# both. JSON and logs go to OUT/rN-after/ and OUT/rN-before/; summarise with
# `python bench/sitting_table.py OUT`. Run nothing else meanwhile.
set -u
if (($# < 4)); then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
out=$(realpath -m "$1") before=$(realpath "$2") rounds=$3
shift 3
cd "$(dirname "$0")/.."
mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then trees="after before"; else trees="before after"; fi
  for scenario in "$@"; do
    for tree in $trees; do
      dir="$out/r$round-$tree"
      mkdir -p "$dir"
      echo "$(date -u +%H:%M:%S) round $round $scenario $tree load $(cut -d' ' -f1 /proc/loadavg)"
      if [[ $tree == before ]]; then
        PYTHONPATH=$before timeout 900 .venv/bin/python bench/run.py --results-dir "$dir" "$scenario" >"$dir/$scenario.log" 2>&1
      else
        timeout 900 .venv/bin/python bench/run.py --results-dir "$dir" "$scenario" >"$dir/$scenario.log" 2>&1
      fi
      echo "   exit status $?"
    done
  done
done
echo "$(date -u +%H:%M:%S) done"
