#!/usr/bin/env bash
# Module 1 on the real GPU host (device tool): a real Docker engine (Debian's binaries, carried), the kind
# test double creating the node container from the GENERATED config's mounts, the suite's own setup actions
# (config generation, cluster, node MPS start, CUDA client) and the module 1 checks, then the failure paths:
# daemon killed, host daemon on the shared pipe dir, --teardown.
# Usage (repo root on the GPU host): bash .devwork/module1/src/tests/gpu_host/module1_gpu_host.sh
# Needs: .devwork/module1/{dockerbin.tar.xz,busybox,whl/*.whl,src/}; writes logs into $OUT.
set -u
D=$(cd "$(dirname "$0")/../../.." && pwd)   # .devwork/module1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
LOG=$OUT/gpu-run.log
exec > >(tee -a "$LOG") 2>&1
say() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

if [ -z "${SKIP_DOCKERD:-}" ]; then
say "unpack docker binaries and wheels"
mkdir -p /tmp/dk && tar -C /tmp/dk -xJf "$D/dockerbin.tar.xz"
export PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$D"/whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
say "start dockerd"
(dockerd --iptables=false --ip-masq=false --bridge=none >"$OUT/dockerd.log" 2>&1 &)
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker version --format 'engine {{.Server.Version}}' || { tail -30 "$OUT/dockerd.log"; exit 1; }
fi

cd "$D/src"
W=/tmp/m1; mkdir -p $W
cat > $W/lab.yaml <<YAML
cluster_name: workshop-dra
node_image: "labcheck-kind-double/node:v1.34.0"
kind_config_path: $W/kind-config.yaml
state_dir: $W/state
kind_binary: $D/src/tests/doubles/kind
mps_pipe_dir: /tmp/m1-nvidia-mps
YAML
export KIND_DOUBLE_USERLAND=host KIND_DOUBLE_BUSYBOX=$D/busybox KIND_DOUBLE_LABEL=module1
NODE=workshop-dra-control-plane
PYT="python3 -m pytest tests_env -m module1 --lab-config $W/lab.yaml -p no:cacheprovider -q -rA"

say "host facts"
nvidia-smi -L; ldconfig -p | grep -E 'libcuda.so|libnvidia-ml.so|ptxjit'; which nvidia-smi nvidia-cuda-mps-control nvidia-cuda-mps-server
ls -la /dev/nvidia* ; ls /proc/driver/nvidia
say "host inspection + generated kind config (setup action kind_config on real host data)"
python3 - <<'PY' | tee "$OUT/host-inspection.txt"
from labcheck.config import load
from setup_actions import kind_config
cfg, _ = load("/tmp/m1/lab.yaml")
ins = kind_config.inspect(cfg)
for f in ins.files + ins.devices:
    print(f"{f.kind:8} {f.name:32} {f.path} -> {f.real} {f.problem}")
print("notes:", ins.notes)
PY

say "project tests marked gpu (config generation on the real driver files)"
python3 -m pytest tests/test_module1_gpu.py -p no:cacheprovider -q -rA 2>&1 | tail -5

say "RUN 1: provision (config, cluster via kind double, node MPS start, CUDA client) + checks, 4 xdist workers"
$PYT -n 4 --results-json $OUT/run1.json 2>&1 | grep -vE '^$'
cp $W/kind-config.yaml "$OUT/kind-config.gpu-host.yaml"
say "node view after run 1"
docker exec $NODE ps -o pid,ppid,stat,comm,args
docker exec -e CUDA_MPS_PIPE_DIRECTORY=/tmp/m1-nvidia-mps -e LD_LIBRARY_PATH=/usr/local/nvidia/lib64 $NODE sh -c 'echo get_server_list | '"$(command -v nvidia-cuda-mps-control)"
docker exec $NODE sh -c 'ls -la /dev/nvidia* /tmp/m1-nvidia-mps; df -h /dev/shm; tail -5 /var/log/nvidia-mps/control.log; ls /proc/driver/nvidia; head -1 /proc/driver/nvidia/version'
docker inspect $NODE --format 'privileged={{.HostConfig.Privileged}} devices={{json .HostConfig.Devices}}'
docker inspect $NODE --format '{{range .Mounts}}{{.Source}} -> {{.Destination}} rw={{.RW}}{{println}}{{end}}'

say "node captures (capture format: \$ cmd / output / [exit N]) for verdict unit tests"
cap() { echo "\$ $*"; "$@" 2>&1; echo "[exit $?]"; }
E=(-e CUDA_MPS_PIPE_DIRECTORY=/tmp/m1-nvidia-mps -e LD_LIBRARY_PATH=/usr/local/nvidia/lib64)
{
cap docker exec $NODE ps -o pid,ppid,stat,comm,args
cap docker exec $NODE df -k /dev/shm
cap docker exec "${E[@]}" $NODE /usr/local/nvidia/bin/nvidia-smi
cap docker exec $NODE sh -c 'for p do r=$(readlink -f -- "$p"); echo "$p -> $r"; done' sh /usr/local/nvidia/lib64/libcuda.so.1 /usr/local/nvidia/lib64/libnvidia-ml.so.1
cap docker exec -i "${E[@]}" $NODE /usr/local/nvidia/bin/nvidia-cuda-mps-control <<<get_server_list
cap docker exec "${E[@]}" $NODE python3 -I -c "$(python3 -c 'from labcheck.node.cuda_client import SCRIPT; print(SCRIPT)')" /usr/local/nvidia/lib64
cap docker exec $NODE /usr/local/nvidia/bin/nvidia-cuda-mps-control -d
} > "$OUT/node-captures.txt"
cat "$OUT/node-captures.txt"

say "RUN 2: again (idempotent: config unchanged, cluster reused, daemon already running)"
$PYT --results-json $OUT/run2.json 2>&1 | grep -E 'PASS|FAIL|WARN|SKIP|passed|failed|labcheck'
python3 -c "import json; [print(r['verdict'], r['check'], '-', r['message'][:150]) for r in json.load(open('$OUT/run2.json'))['records']]"
docker exec $NODE ps -o pid,ppid,stat,comm,args

say "kill -9 the MPS control daemon in the node"
for p in $(docker exec $NODE ps -o pid,args | awk '/nvidia-cuda-mps-control -d/ && !/awk/ {print $1}'); do docker exec $NODE kill -9 "$p"; echo "killed $p"; done
docker exec $NODE ps -o pid,ppid,stat,comm,args
{ cap docker exec $NODE ps -o pid,ppid,stat,comm,args; cap docker exec -i "${E[@]}" $NODE /usr/local/nvidia/bin/nvidia-cuda-mps-control <<<get_server_list; } >> "$OUT/node-captures.txt"
say "RUN 3: --no-provision after the kill (must fail with a clear reason)"
$PYT --no-provision -k 'mps' 2>&1 | grep -vE '^$'

say "RUN 4: provision again (restarts the daemon, reuses the cluster)"
$PYT -k 'mps or cluster_provisioned' 2>&1 | grep -vE '^$'
docker exec $NODE ps -o pid,ppid,stat,comm,args

say "host daemon on the shared pipe dir (conflict): quit the node's daemon, start one on the host, provision"
docker exec -i -e CUDA_MPS_PIPE_DIRECTORY=/tmp/m1-nvidia-mps -e LD_LIBRARY_PATH=/usr/local/nvidia/lib64 $NODE \
  "$(command -v nvidia-cuda-mps-control)" <<<quit; echo "node quit rc=$?"; sleep 2
mkdir -p /tmp/m1-hostlog
CUDA_MPS_PIPE_DIRECTORY=/tmp/m1-nvidia-mps CUDA_MPS_LOG_DIRECTORY=/tmp/m1-hostlog nvidia-cuda-mps-control -d; echo "host start rc=$?"
ps -eo pid,ppid,stat,comm,args | grep [m]ps
$PYT -k 'mps' 2>&1 | grep -vE '^$'
echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/m1-nvidia-mps nvidia-cuda-mps-control; echo "quit rc=$?"

say "RUN 5: --teardown (cluster created by the suite => deleted)"
$PYT -k 'node_container_running' --teardown 2>&1 | grep -vE '^$'
docker ps -a --format '{{.Names}} {{.Status}}'
say "done"; tail -5 "$OUT/dockerd.log" >> "$LOG"
