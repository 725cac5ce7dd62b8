#!/usr/bin/env bash
# The device check on a GPU machine without network, in one command:
#
#     bash benchmarks/device/device_check.sh OUT_DIR [device_check.py options]
#
# Installs the wheels that benchmarks/device/prepare_device.py downloaded into .whl/ (offline, without
# dependencies: the rest is on the machine), checks that the project itself installs offline, then
# runs benchmarks/device/device_check.py on the data copy in .devdata/ and writes OUT_DIR/device_check.json
# and OUT_DIR/device_check.md (with OUT_DIR/install.log and OUT_DIR/device_check.log beside them).
# Beforehand, on a machine with PyPI: `python -m benchmarks.device.prepare_device all` (both folders are
# git-ignored; the call that runs this script must carry .whl and .devdata with the working tree).
# Everything together takes at most 8 minutes on an H100: the parts share a 420 s budget.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/device/device_check.sh OUT_DIR [device_check.py options]}
shift
mkdir -p "$OUT"
SITE=/tmp/colorjax-site
started=$(date +%s)
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    >"$OUT/install.log" 2>&1 || { echo "wheel install failed:"; tail -20 "$OUT/install.log"; }
else
  echo "no .whl/ folder: using the packages already installed" | tee "$OUT/install.log"
fi
# The project as a user installs it, offline and without dependencies, into a scratch target (the
# check itself imports the source tree, so that tests/ and experiments/ see the same code).
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/colorjax-project . \
  >>"$OUT/install.log" 2>&1 && echo "project installs offline" >>"$OUT/install.log" \
  || echo "project install FAILED (see install.log)" | tee -a "$OUT/install.log"
echo "install: $(( $(date +%s) - started )) s" | tee -a "$OUT/install.log"
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # each part's peak memory is its own; test children share the GPU
export PYTHONUNBUFFERED=1
export COLORJAX_COMMIT=${COLORJAX_COMMIT:-$(cat .devdata/commit.txt 2>/dev/null || echo unknown)}
python3 -m benchmarks.device.device_check --out "$OUT" "$@" 2>&1 | tee "$OUT/device_check.log"
