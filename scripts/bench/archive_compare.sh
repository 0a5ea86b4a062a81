#!/bin/sh
# Alternating runs of scripts/bench/archive.py from two checkouts (old, new): ROUNDS rounds of
# RUNS runs each, JSON per run in OUT, the load average before each.
# Usage: scripts/bench/archive_compare.sh OLD_CHECKOUT NEW_CHECKOUT OUT [ROUNDS] [RUNS] [extra bench flags]
old=$1; new=$2; out=$3; rounds=${4:-2}; runs=${5:-5}; shift 5 2>/dev/null || shift $#
mkdir -p "$out"
i=0
while [ "$i" -lt "$rounds" ]; do
    for side in old new; do
        if [ "$side" = old ]; then dir=$old; else dir=$new; fi
        uptime > "$out/$side-$i.load"
        (cd "$dir" && PYTHONPATH=. .venv/bin/python -m scripts.bench.archive --archives 0 --runs "$runs" "$@") \
            > "$out/$side-$i.json" 2> "$out/$side-$i.err"
        uptime >> "$out/$side-$i.load"
    done
    i=$((i + 1))
done
