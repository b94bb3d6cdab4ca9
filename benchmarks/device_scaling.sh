#!/usr/bin/env bash
# Issue 15 on a many-core machine with a GPU, in one run of at most ~540 s:
#   0. environment (cores, GPU, versions)                         -> $OUT/env.txt
#   1. installs the wheels of .whl/ (benchmarks/fetch_device_wheels.sh) into /tmp/site
#   2. generates SCALING_EVENTS (4M) synthetic QCD events in SCALING_FILES (32) files with
#      GEN_WORKERS (16) processes, then benchmarks/scaling.py with a dask LocalCluster of
#      1,2,4,8,16 single-threaded workers: the light dijet workload on all events, and the
#      constituent workload on the first CONST_FILES (16) files      -> $OUT/scaling_*.txt/json
#   3. peak memory of one 100k-event chunk, with and without constituents -> $OUT/memory.txt
#   4. benchmarks/tree_scoring.py: boosted-tree scoring, QuickScorer against scikit-learn's
#      walk at 1..16 threads (where adcoffea.models.quickscorer.MAX_THREADS should be)
#                                                                    -> $OUT/tree_scoring.txt
#   5. benchmarks/device_training.py: AE, CWoLa (MLP; BDT on CPU) and VRNN training and
#      scoring on the GPU against the CPU                            -> $OUT/training.txt/json
# Each step gets a time budget from what is left (DEVICE_LIMIT_S, default 540 s), skips what
# would overrun, and prints what it did. Run from the repo root:
#     OUT=/some/dir bash benchmarks/device_scaling.sh
# Small test on any machine (wheels already importable, no GPU needed):
#     SKIP_WHEELS=1 SCALING_EVENTS=40000 SCALING_FILES=4 CONST_FILES=2 SCALING_WORKERS=1,2 \
#     TRAIN_EVENTS=20000 TRAIN_JETS=2000 TRAIN_EPOCHS=1 GEN_WORKERS=2 TREE_THREADS=1,2 OUT=/tmp/o \
#     bash benchmarks/device_scaling.sh
set -uo pipefail
T0=$SECONDS
LIMIT=${DEVICE_LIMIT_S:-540}
EVENTS=${SCALING_EVENTS:-4000000}
FILES=${SCALING_FILES:-32}
CONST_FILES=${CONST_FILES:-16}
WORKERS=${SCALING_WORKERS:-1,2,4,8,16}
GEN_WORKERS=${GEN_WORKERS:-16}
CHUNK=${SCALING_CHUNK:-100000}
TRAIN_EVENTS=${TRAIN_EVENTS:-300000}
TRAIN_JETS=${TRAIN_JETS:-20000}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-5}
DATA=${SCALING_DATA:-/tmp/adc_scaling_data}
OUT=${OUT:-/tmp/adc_device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
left() { echo $((LIMIT - (SECONDS - T0))); }
# budget STEP_CAP RESERVE: seconds for a step, at most STEP_CAP, keeping RESERVE for later steps
budget() { local b=$(($(left) - $2)); [ "$b" -gt "$1" ] && b=$1; echo "$b"; }
stamp() { echo "=== [$((SECONDS - T0)) s elapsed, $(left) s left] $*"; }

{
  stamp "environment"
  echo "cores: $(nproc)"; free -g | head -2
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  python3 --version
  if [ -z "${SKIP_WHEELS:-}" ]; then
    t=$SECONDS
    if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl; then
      # no usable pip: a wheel of these pure/abi-tagged packages is a zip of the site tree
      echo "pip install failed; unpacking the wheels into /tmp/site instead"
      for w in .whl/*.whl; do python3 -m zipfile -e "$w" /tmp/site; done
    fi
    echo "wheels installed in $((SECONDS - t)) s: $(ls .whl | wc -l) files"
  fi
} 2>&1 | tee "$OUT/env.txt"
if [ -z "${SKIP_WHEELS:-}" ]; then
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
python3 - <<'PY' 2>&1 | tee -a "$OUT/env.txt"
import importlib, os
for m in ("numpy", "numba", "awkward", "uproot", "coffea", "hist", "dask", "distributed",
          "pydantic", "sklearn", "torch"):
    try:
        print(f"{m} {importlib.import_module(m).__version__}")
    except Exception as err:
        print(f"{m}: IMPORT FAILED {type(err).__name__}: {err}")
try:
    import torch
    print("cuda:", torch.cuda.is_available(), "torch threads:", torch.get_num_threads(),
          "cpu count:", os.cpu_count())
    import adcoffea.execution, adcoffea.processors, adcoffea.models.train  # the paths benchmarked
    print("adcoffea imports: ok")
except Exception as err:
    print(f"IMPORT FAILED {type(err).__name__}: {err}")
PY

# ---- the sample: generated once (GEN_WORKERS processes), reused by both scaling runs
{
  stamp "generating $EVENTS QCD events into $FILES files with $GEN_WORKERS processes"
  python3 -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from scaling import cached_sample
cached_sample(Path('$DATA'), events=$EVENTS, files=$FILES, workers=$GEN_WORKERS)
"
  echo "exit status $?"
} 2>&1 | tee "$OUT/scaling_light.txt"

# ---- scaling: light workload on all events
B=$(budget 100 330)
[ "$B" -lt 10 ] && B=10  # (0 would mean "no limit" to scaling.py)
{
  stamp "scaling, light workload, $EVENTS events, workers $WORKERS (budget $B s)"
  python3 benchmarks/scaling.py --events "$EVENTS" --files "$FILES" --data "$DATA" \
    --gen-workers "$GEN_WORKERS" --chunksize "$CHUNK" --executors dask --workers "$WORKERS" \
    --workload light --time-limit "$B" --json "$OUT/scaling_light.json"
  echo "exit status $?"
} 2>&1 | grep -v "Processing\|Merging\|Preprocessing" | tee -a "$OUT/scaling_light.txt"

# ---- scaling: constituents workload on the first CONST_FILES files
B=$(budget 150 200)
{
  stamp "scaling, constituents workload, first $CONST_FILES of $FILES files, workers $WORKERS (budget $B s)"
  if [ "$B" -gt 20 ]; then
    python3 benchmarks/scaling.py --events "$EVENTS" --files "$FILES" --data "$DATA" \
      --use-files "$CONST_FILES" --chunksize "$CHUNK" --executors dask --workers "$WORKERS" \
      --workload constituents --time-limit "$B" --json "$OUT/scaling_constituents.json"
    echo "exit status $?"
  else
    echo "skipped: not enough time left"
  fi
} 2>&1 | grep -v "Processing\|Merging\|Preprocessing" | tee "$OUT/scaling_constituents.txt"

# ---- memory of one 100k-event chunk, with and without constituents
B=$(budget 60 160)
{
  stamp "memory per 100k-event chunk (budget $B s)"
  if [ "$B" -gt 10 ]; then
    timeout "$B" python3 benchmarks/throughput.py --memory-only --events 100000 \
      --cache "$DATA/throughput"
    echo "exit status $?"
  else
    echo "skipped: not enough time left"
  fi
} 2>&1 | tee "$OUT/memory.txt"

# ---- boosted-tree scoring: QuickScorer against scikit-learn's walk, per thread count
B=$(budget 45 150)
{
  stamp "tree scoring threads (budget $B s)"
  if [ "$B" -gt 15 ]; then
    timeout "$B" python3 benchmarks/tree_scoring.py --threads "${TREE_THREADS:-1,2,4,8,16}" \
      --cache "$DATA/throughput"
    echo "exit status $?"
  else
    echo "skipped: not enough time left"
  fi
} 2>&1 | tee "$OUT/tree_scoring.txt"

# ---- training and scoring, GPU against CPU
B=$(budget 240 5)
{
  stamp "training: GPU against CPU (budget $B s)"
  if [ "$B" -gt 30 ]; then
    python3 benchmarks/device_training.py --events "$TRAIN_EVENTS" --jets "$TRAIN_JETS" \
      --epochs "$TRAIN_EPOCHS" --devices "${TRAIN_DEVICES:-cpu,cuda}" --time-limit "$((B - 25))" \
      --json "$OUT/training.json"
    echo "exit status $?"
  else
    echo "skipped: not enough time left"
  fi
  stamp "done"
} 2>&1 | tee "$OUT/training.txt"
