#!/usr/bin/env bash
# Issue 46 on the lent 16-core GPU machine (Python 3.12, no network, no Prefect): one call,
# ~6 minutes, never past DEADLINE (420 s). The question: do 0987ce4 + c5eda84 (idle lanes
# take the unstarted items of an overdue chunk) help at 256 x 50 ms without hurting at
# 64 x 20 ms? Steps (each under its own timeout, its output to $OUT as it goes): GPU
# telemetry probe; throughput_goal 64 x 20 ms, 12,000; 256 x 50 ms, 40,960, twice; each run
# with bare-wire:4, before:4 (0987ce4^ = 373d87b) and evalflow:4 (the repository) in turn, so
# that before and after see the same load. Back (5 files): 00-setup.txt 01-gpu.txt
# 02-goal-64x20.txt 03-goal-256x50.txt 05-logs.tgz (py-spy and host spans of b and c2,
# client logs).
# The kit, made here from the repository root (benchmarks/perf/README.md, "Issue 46 on a
# lent 16-core machine", says which wheels the image already has):
#   printf '/.whl/\n/.dev46/\n' >> "$(git rev-parse --git-common-dir)/info/exclude"
#   python3.12 -m pip install --dry-run --ignore-installed --report r.json -c constraints.txt .
#   (CARRY.txt: r.json's name==version less the image's and evalflow; rouge-score apart)
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
#       --platform manylinux_2_5_x86_64 -d .whl -r CARRY.txt py-spy
#   python3 -m pip wheel --no-deps -w .whl rouge-score==0.1.2
#   mkdir -p .dev46/before && git archive 0987ce4^ evaluation flows tasks selection \
#       deployments benchmarks tests/__init__.py tests/support ':(exclude)benchmarks/perf/results' \
#       ':(exclude)benchmarks/perf/README.md' | tar -x -C .dev46/before
#   cp benchmarks/perf/device_issue46.sh .dev46/run.sh   (no __pycache__ left in .dev46)
# The device tool sends the checkout its session started in: the kit lies in that one's root.
# Device call: carry [".whl", ".dev46"], command `bash .dev46/run.sh`, timeout_s 480.
# Dry run here (tiny sizes, longer timeouts): PY=.venv/bin/python SKIP_INSTALL=1 OUT=/tmp/o \
#   SMALL=1 TSCALE=5 DEADLINE=3000 bash .dev46/run.sh (a python3.12 venv can take .whl too)
set -u
PY=${PY:-python3}
OUT=${OUT:?OUT: the folder whose files come back}
ROOT=$(pwd)
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/dev46run}
BEFORE=${BEFORE:-.dev46/before}
export PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
if [ -n "${SMALL:-}" ]; then # the dry run's sizes
    A_S=1 B_N=400 C_N=800
else
    A_S=5 B_N=12000 C_N=40960
fi
TSCALE=${TSCALE:-1}       # the dry run's slower machine: every timeout times this
DEADLINE=${DEADLINE:-420} # s: no step runs past it (each timeout cut to fit, or skipped)
mkdir -p "$OUT" "$WORK/tmp"
export TMPDIR=$WORK/tmp # the benchmarks' work folders (logs) land here, tarred at the end
SETUP=$OUT/00-setup.txt
say() { echo "[$(date -u +%T)] $*" | tee -a "$SETUP"; }
die() {
    say "FATAL: $*"
    exit 3
}

# A step: its output to $OUT/FILE as it goes, under its own timeout; any process it left
# (the benchmarks start process trees in sessions of their own) is killed by its mark.
step() {
    local tag=$1 limit=$(($2 * TSCALE)) file=$3
    shift 3
    local left=$((DEADLINE - SECONDS - 10))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 15 ]; then
        say "step $tag: skipped, ${left}s left of the ${DEADLINE}s"
        return
    fi
    say "step $tag (timeout ${limit}s) -> $file: $*"
    local t0=$SECONDS
    echo "=== $tag: $* ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >>"$OUT/$file"
    DEV46_STEP=$tag timeout -k 5 "$limit" "$@" >>"$OUT/$file" 2>&1
    local rc=$?
    local strays
    strays=$(grep -lzsx "DEV46_STEP=$tag" /proc/[0-9]*/environ | cut -d/ -f3 | tr '\n' ' ')
    [ -n "$strays" ] && kill -9 $strays 2>/dev/null
    say "step $tag: rc $rc in $((SECONDS - t0)) s${strays:+; killed strays $strays}"
    echo "=== $tag: rc $rc in $((SECONDS - t0)) s" >>"$OUT/$file"
}

say "nproc $(nproc); $(uptime 2>/dev/null || cat /proc/loadavg)"
{ nvidia-smi -L || echo "no nvidia-smi"; } 2>&1 | tee -a "$SETUP"
say "$($PY --version 2>&1) at $(command -v "$PY"); repo $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

if [ -z "${SKIP_INSTALL:-}" ]; then
    t0=$SECONDS
    timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" .whl/*.whl >>"$SETUP" 2>&1 || die "pip install of .whl failed"
    export PYTHONPATH=$SITE PATH=$SITE/bin:$PATH
    say "installed $(ls .whl/*.whl | wc -l) wheels in $((SECONDS - t0)) s"
fi
t0=$SECONDS
compile=(evaluation flows tasks selection deployments benchmarks tests/support "$BEFORE")
[ -z "${SKIP_INSTALL:-}" ] && compile+=("$SITE")
timeout 90 "$PY" -m compileall -q -j 0 "${compile[@]}" >>"$SETUP" 2>&1
say "compileall rc $? in $((SECONDS - t0)) s"

# Fail fast: what every step imports, from the repository and from the before checkout.
check='import prefect, sqlmodel, sqlalchemy, fastapi, pandas, scipy, psutil, httpx, yaml
import evaluation, flows.cli.app, evaluation.run._gpu, tests.support.standin_fast
import sys; print("ok", sys.argv[1], prefect.__version__, sqlmodel.__version__, pandas.__version__, evaluation.__file__)'
PYTHONPATH=$ROOT:${PYTHONPATH:-} "$PY" -c "$check" after >>"$SETUP" 2>&1 || die "imports (after)"
(cd "$BEFORE" && "$PY" -c "$check" before) >>"$SETUP" 2>&1 || die "imports (before)"
PYTHONPATH=$ROOT:${PYTHONPATH:-} timeout 60 "$PY" -m flows.cli --help >/dev/null 2>>"$SETUP" ||
    die "python -m flows.cli --help"
spy=$(command -v py-spy) && say "py-spy: $($spy --version)" || say "py-spy: none (no profiles)"
grep "^ok " "$SETUP"

# a. GPU telemetry (~15 s)
probe=(env "PYTHONPATH=$ROOT:${PYTHONPATH:-}" "$PY" benchmarks/perf/gpu_telemetry_probe.py)
step a1 15 01-gpu.txt "${probe[@]}" --seconds "$A_S"
step a2 20 01-gpu.txt "${probe[@]}" --busy --seconds "$A_S" --interval 0.2

# b. 64 slots x 20 ms: before (0987ce4^) and after in one run (~5 s a phase, ~60 s in all)
goal=("$PY" benchmarks/perf/throughput_goal.py)
step b 100 02-goal-64x20.txt "${goal[@]}" --generations "$B_N" --slots 64 --latency-ms 20 \
    --clients bare-wire:4,before:4,evalflow:4 --before "$BEFORE" --profile "$WORK/profile-b"

# c. 256 slots x 50 ms (capacity 5,120/s: the bare phase >= C_N / 5,120 = 8 s; before and
# after 8-25 s): two runs, each with its own bare client, so that a timeout keeps the
# first's figures; c2 also keeps host spans (requests open per second: the tail) and py-spy
step c1 120 03-goal-256x50.txt "${goal[@]}" --generations "$C_N" --slots 256 --latency-ms 50 \
    --clients bare-wire:4,before:4,evalflow:4 --before "$BEFORE"
step c2 120 03-goal-256x50.txt "${goal[@]}" --generations "$C_N" --slots 256 --latency-ms 50 \
    --clients bare-wire:4,before:4,evalflow:4 --before "$BEFORE" --profile "$WORK/profile-c2"

# d. pipeline_throughput (64 x 20 ms): not this call (measured in call 1)
# e. inspect: not carried (inspect_ai 0.3.285's wheel alone is 35 MB)

# Logs: py-spy profiles, host spans, every client's log and RSS samples (no databases)
(cd "$WORK" && find . \( -name '*.log' -o -name '*.tsv' -o -name '*.txt' -o -name '*.json' \) \
    -not -path '*/home*' -print0 | tar -czf "$OUT/05-logs.tgz" --null -T -)
say "done in $SECONDS s; 05-logs.tgz $(du -h "$OUT/05-logs.tgz" | cut -f1)"
