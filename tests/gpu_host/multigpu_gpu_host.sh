#!/usr/bin/env bash
# Issue 14's per-GPU path on the GPU host (device tool; a 1-GPU H200 is what is lent, so this proves the path with
# N=1: one client pinned by UUID, its cuDeviceGetUuid line equal to nvidia-smi's UUID, served by the host daemon and
# by the node's daemon; the node's nvidia-smi GPU list equal to the host's). Runs the merged product as
# final_gpu_host.sh does (real dockerd from .devwork/kit), then prints the lines that matter.
# Usage, from the repo root there: bash tests/gpu_host/multigpu_gpu_host.sh (needs .devwork/kit). Logs in $OUT.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
say() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
{
say "what the host reports"; nvidia-smi -L; nvidia-smi --query-gpu=index,uuid --format=csv,noheader
say "our client pinned to each GPU by UUID (no MPS daemon: only the UUID line matters here)"
nvidia-smi --query-gpu=uuid --format=csv,noheader | while read -r u; do
  echo "CUDA_VISIBLE_DEVICES=$u"; CUDA_VISIBLE_DEVICES=$u CUDA_MPS_PIPE_DIRECTORY=/tmp/mg-none timeout 60 \
    python3 -S labcheck/cuda_client.py --hold 0 --device 0 --lib-dir /usr/local/nvidia/lib64 </dev/null; echo "[exit $?]"
done
} 2>&1 | tee "$OUT/multigpu.log"
bash tests/gpu_host/final_gpu_host.sh
say "per-GPU lines" | tee -a "$OUT/multigpu.log"
grep -hE "mps_serves_a_cuda_client|mps_server_running_in_node|lists_every_host_gpu|gpus_present|one_client_per_gpu" \
  "$OUT/final.log" | tee -a "$OUT/multigpu.log"
