#!/usr/bin/env bash
# Issue 46's goal, every figure in one call, for an idle machine (the figures beside the
# bare client and Inspect, each step's load printed with it). From the repository root:
#
#     bash benchmarks/perf/issue46_figures.sh            # ~20-25 min on 2 idle cores
#
# Steps, in this order (each its own output file in $OUT, then the lines that carry the
# goal's figures printed together at the end):
#   1 goal-4000      throughput_goal.py, 64 slots x 20 ms, 4,000: bare (plain httpx, the
#                    issue's bare client), bare-wire (the same loop on evalflow's transport:
#                    the harder bar), evalflow (run's default: one process), evalflow:2
#                    (--workers 2), inspect
#   2 goal-100000    the same host, 100,000: bare-wire, evalflow (CPU all in, the tree's
#                    memory: RSS sum, PSS, pages once; the goal's 600 MB is 572 MiB)
#   3 kill-100000    100,000 killed with kill -9 at 50,000 and resumed: rows, distinct keys,
#                    requests redone (0 is exact)
#   4 goal-256x50    256 slots x 50 ms, 20,000: bare-wire, bare-wire:2, evalflow, evalflow:2
#   5 pipes-4        pipeline_throughput.py, 4 slots x 200 ms, twice: the controls, one_case,
#                    many_cases (vs_control / vs_wire: the map's share against the bare
#                    client's)
#   6 pipes-64       the same at 64 slots x 20 ms, 64 documents of 50 calls, twice
#   7 start-up       cli_start.py (this checkout: python -m flows.cli, compiled first): show
#                    and view's first page at 72, 5,040 and 100,000
#                    generations (3 runs each; the databases filled first, kept in $DBS,
#                    default $OUT/dbs: a folder of earlier ones is reused)
# Environment: PY (default .venv/bin/python: inspect_ai and psutil are in the dev extra),
# OUT (default /tmp/issue46-figures-HHMM), SKIP (steps to leave out, e.g. "3 7"), NICE
# (default 0: the machine is meant to be idle); a dry run's sizes: N4K, N100K, KILL_AT,
# N256, SIZES, REPEAT (e.g. N4K=400 N100K=1000 KILL_AT=500 N256=800 SIZES=72 REPEAT=1).
set -u
PY=${PY:-.venv/bin/python}
OUT=${OUT:-/tmp/issue46-figures-$(date -u +%H%M)}
SKIP=${SKIP:-}
NICE=${NICE:-0}
N4K=${N4K:-4000} N100K=${N100K:-100000} KILL_AT=${KILL_AT:-50000} N256=${N256:-20000}
SIZES=${SIZES:-72,5040,100000} REPEAT=${REPEAT:-2}
PERF=benchmarks/perf
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
say() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/steps.txt"; }

step() { # step NUMBER NAME COMMAND...: its output to $OUT/NAME.txt, its wall and load said
    local number=$1 name=$2
    shift 2
    case " $SKIP " in *" $number "*) say "step $number $name: skipped" && return ;; esac
    say "step $number $name: start, load $(cut -d' ' -f1-3 /proc/loadavg)"
    local began=$SECONDS
    nice -n "$NICE" "$@" >"$OUT/$name.txt" 2>&1
    say "step $number $name: exit $?, $((SECONDS - began)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

say "issue 46 figures: $(git rev-parse --short HEAD 2>/dev/null), $(nproc) CPUs, out $OUT"
step 1 goal-4000 "$PY" $PERF/throughput_goal.py --generations "$N4K" \
    --clients bare,bare-wire,evalflow,evalflow:2,inspect
step 2 goal-100000 "$PY" $PERF/throughput_goal.py --generations "$N100K" \
    --clients bare-wire,evalflow
step 3 kill-100000 "$PY" $PERF/throughput_goal.py --generations "$N100K" --kill-at "$KILL_AT"
step 4 goal-256x50 "$PY" $PERF/throughput_goal.py --generations "$N256" --slots 256 \
    --latency-ms 50 --clients bare-wire,bare-wire:2,evalflow,evalflow:2
step 5 pipes-4 "$PY" $PERF/pipeline_throughput.py --repeat "$REPEAT" --scenario single_control \
    --scenario wire_control --scenario one_case --scenario many_cases
step 6 pipes-64 "$PY" $PERF/pipeline_throughput.py --repeat "$REPEAT" --slots 64 --latency-ms 20 \
    --cases 64 --control-calls 3200 --scenario single_control --scenario wire_control \
    --scenario many_cases
DBS=${DBS:-$OUT/dbs}
mkdir -p "$DBS"
step 7 start-up "$PY" $PERF/cli_start.py --sizes "$SIZES" --only-sizes --runs 3 \
    --code "$(pwd)" --keep "$DBS"

# The goal's figures side by side: each throughput table (its header, its clients' rows
# and the rate against every bare client), the kill's block, the pipelines' figures over
# their runs, and the start-up verbs' medians.
shown() { # shown NAME COMMAND...: the lines COMMAND picks from step NAME's output
    local name=$1
    shift
    [ -f "$OUT/$name.txt" ] || return 0
    echo "== $name"
    "$@" "$OUT/$name.txt"
}
for name in goal-4000 goal-100000 goal-256x50; do
    shown "$name" grep -E '^[0-9]+ slots x|^client \||^(bare|evalflow|inspect)[^ ]* \||: rate [0-9]'
done
shown kill-100000 sed -n '/^kill -9 at/,$p'
shown pipes-4 sed -n '/each figure over the runs/,$p'
shown pipes-64 sed -n '/each figure over the runs/,$p'
shown start-up grep -E '^[0-9,]+ generations|^(verb|show|view|monitor|experiments|load average)'
echo "== steps"
cat "$OUT/steps.txt"
