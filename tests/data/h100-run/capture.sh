#!/usr/bin/env bash
# Captures taken on the H100 host through the device tool (output: captures.txt beside this file).
# Run from the repo root. Uses its own pipe dir /tmp/cap-mps so it never touches /tmp/nvidia-mps.
set -u
C=$(command -v nvidia-cuda-mps-control || echo /usr/local/nvidia/bin/nvidia-cuda-mps-control)
P=/tmp/cap-mps; L=/tmp/cap-mps-log; mkdir -p "$P" "$L"
export CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$L
echo "$ nvidia-smi --query-gpu=index,uuid,name,driver_version,compute_cap,compute_mode,memory.total --format=csv,noheader,nounits"
timeout 20 nvidia-smi --query-gpu=index,uuid,name,driver_version,compute_cap,compute_mode,memory.total --format=csv,noheader,nounits; echo "[exit $?]"
echo "$ CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control -d"; timeout 20 "$C" -d; echo "[exit $?]"
(sleep 10 | python3 labcheck/cuda_client.py --hold 10 > /tmp/cap-client.out 2>&1; echo "[exit $?]" >> /tmp/cap-client.out) &
sleep 4
echo "$ echo get_server_list | nvidia-cuda-mps-control   # client holding its context"
S=$(echo get_server_list | timeout 10 "$C"); rc=$?; echo "$S"; echo "[exit $rc]"
for s in $S; do
  echo "$ echo get_client_list $s | nvidia-cuda-mps-control"; echo "get_client_list $s" | timeout 10 "$C"; echo "[exit $?]"
done
echo "$ nvidia-smi   # client holding its context"; timeout 20 nvidia-smi; echo "[exit $?]"
echo "$ ps -eo pid,ppid,stat,comm,args | grep -E 'mps|cuda_client'"; ps -eo pid,ppid,stat,comm,args | grep -E '[m]ps|[c]uda_client'; echo "[exit 0]"
wait
echo "$ python3 labcheck/cuda_client.py --hold 10   # with CUDA_MPS_PIPE_DIRECTORY=$P"; cat /tmp/cap-client.out
D=$(cat "$P/nvidia-cuda-mps-control.pid" 2>/dev/null)
echo "$ kill -9 $D   # the control daemon; then: echo get_server_list | nvidia-cuda-mps-control"
kill -9 "$D"; sleep 1
echo get_server_list | timeout 10 "$C"; echo "[exit $?]"
echo "$ ls -la $P   # after the kill"; ls -la "$P"; echo "[exit 0]"
echo "$ ps -eo pid,ppid,stat,comm,args | grep mps   # after the kill"; ps -eo pid,ppid,stat,comm,args | grep '[m]ps'; echo "[exit 0]"
echo "$ nvidia-cuda-mps-control -d   # after the kill, pipe dir left behind"; timeout 10 "$C" -d; echo "[exit $?]"
echo "$ echo get_server_list | nvidia-cuda-mps-control"; echo get_server_list | timeout 10 "$C"; echo "[exit $?]"
echo "$ echo quit | nvidia-cuda-mps-control"; echo quit | timeout 10 "$C"; echo "[exit $?]"
for s in $(ps -eo pid,args | awk '/[n]vidia-cuda-mps-server/{print $1}'); do kill "$s"; done
echo "== $L/control.log"; cat "$L/control.log" 2>/dev/null | tail -40
