#!/usr/bin/env bash
# Download, into .whl/, the wheels a bare CPython 3.12 machine with torch/numpy/scipy/sklearn/
# numba/pandas/pyarrow (the device machine) lacks to run adcoffea's processing path: the coffea
# Runner with the dijet processors, a dask LocalCluster, and the torch/sklearn model training.
# Versions are pinned to this checkout's venv (pip freeze). Run from the repo root:
#     bash benchmarks/fetch_device_wheels.sh [PYTHON]      # PYTHON: default .venv python
# and carry .whl/ to the device; benchmarks/device_scaling.sh installs them with
#     python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
# The set was found by importing everything the benchmark runs (main process and dask
# workers) and mapping sys.modules to distributions, then adding each wheel's Requires-Dist
# that the device does not have.
set -euo pipefail
PY=${1:-${VIRTUAL_ENV:-/work/main/.venv}/bin/python}
DEST=${WHL_DIR:-.whl}
mkdir -p "$DEST"
# compiled for cp312 (manylinux) ...
BINARY="awkward_cpp boost-histogram cramjam lz4 pydantic_core tornado"
# ... and pure python
PURE="coffea uproot awkward hist histoprint uhi vector dask distributed partd locket zict tblib
click cachetools loky pydantic annotated-types typing-inspection typing_extensions toml
importlib_metadata zipp lazy-importer"
freeze=$("$PY" -m pip freeze 2>/dev/null)
pin() {  # NAME -> NAME==VERSION from the venv (names compared case- and _/- insensitively)
  local want; want=$(echo "$1" | tr 'A-Z_' 'a-z-')
  echo "$freeze" | awk -F'==' -v w="$want" '{n=tolower($1); gsub("_","-",n); if (n==w) {print $1"=="$2; exit}}'
}
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
COMMON=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d "$DEST" -q)
for name in $BINARY; do
  spec=$(pin "$name"); [ -n "$spec" ] || { echo "not in the venv: $name" >&2; exit 1; }
  "$PY" -m pip download "${COMMON[@]}" "${PLAT[@]}" "$spec"
done
for name in $PURE; do
  spec=$(pin "$name"); [ -n "$spec" ] || { echo "not in the venv: $name" >&2; exit 1; }
  "$PY" -m pip download "${COMMON[@]}" --platform any "$spec"
done
# keep one version of each distribution (an older download left in .whl/ is removed)
"$PY" - "$DEST" <<'PY'
import re, sys
from pathlib import Path
seen = {}
for w in sorted(Path(sys.argv[1]).glob("*.whl"), key=lambda p: p.stat().st_mtime, reverse=True):
    key = re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower()
    if key in seen:
        print(f"removing older {w.name} (kept {seen[key]})")
        w.unlink()
    else:
        seen[key] = w.name
PY
ls "$DEST" | wc -l | xargs echo "wheels:"
du -sh "$DEST" | cut -f1 | xargs echo "total size:"
