#!/usr/bin/env bash
# Module 0's speed figures on the GPU host (device tool), after tests/gpu_host/final_gpu_host.sh in the same call
# (it leaves the kit's dockerd running and the wheels in /tmp/site): a venv without the machine's site packages,
# the kit's wheels on PYTHONPATH, then benchmarks/module0.py --repeat 5. Writes $OUT/module0-speed.{log,json}.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/module0-speed.log") 2>&1
export PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib
[ -d /tmp/site ] || { echo "no /tmp/site: run tests/gpu_host/final_gpu_host.sh first"; exit 2; }
rm -rf /tmp/speedvenv && python3 -m venv --without-pip /tmp/speedvenv || exit 2
PYTHONPATH=/tmp/site:$PWD /tmp/speedvenv/bin/python -c "import sys, pytest, docker; print(sys.version.split()[0], pytest.__version__)"
PYTHONPATH=/tmp/site:$PWD /tmp/speedvenv/bin/python benchmarks/module0.py --repeat 5 --json "$OUT/module0-speed.json"
