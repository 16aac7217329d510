#!/usr/bin/env bash
# Issue 9 proof on the GPU host (device tool): a real dockerd (Debian's binaries from the kit), the node container
# made by the kind double from the GENERATED config on the host's /usr/local/nvidia layout, a node userland with
# glibc + busybox and NO python3 (like kindest/node). Run 1 provisions and checks (literal workshop commands,
# nvidia-smi, mps-control, mps-server, driver paths); then the node's daemon is quit and run 2 (--no-provision)
# must fail mps-control and mps-server with the exact fix.
# Usage, from the repo root on the GPU host: bash .devwork/m1node/tests/gpu_host/module1_node_proof.sh
# Needs .devwork/kit (dockerbin.tar.xz, busybox, whl/) and this tree in .devwork/m1node; logs go to $OUT.
set -u
K=$PWD/.devwork/kit; S=$(cd "$(dirname "$0")/../.." && pwd); OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/proof.log") 2>&1
say() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
cap() { echo "\$ $*"; timeout 60 "$@" 2>&1; echo "[exit $?]"; }
say "docker engine"
tar -C /tmp -xJf "$K/dockerbin.tar.xz"; export PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$K"/whl/*.whl "$S"/.whl/*.whl 2>&1 | grep -v WARNING
export PYTHONPATH=/tmp/site
docker info >/dev/null 2>&1 || (setsid dockerd --iptables=false --ip-masq=false --bridge=none >"$OUT/dockerd.log" 2>&1 &)
for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker version --format 'engine {{.Server.Version}}' || exit 1
cd "$S"; git_rev=$(cat .proof-rev 2>/dev/null); echo "tree: $git_rev"
W=/tmp/m1proof-${CLUSTER:-workshop-dra}; rm -rf $W; mkdir -p $W
cat > $W/lab.yaml <<YAML
cluster_name: ${CLUSTER:-workshop-dra}
node_image: "labcheck-kind-double/node:v1.34.0"
kind_config_path: $W/kind-config.yaml
state_dir: $W/state
kind_binary: $S/tests/doubles/kind
YAML
export KIND_DOUBLE_BUSYBOX=$K/busybox KIND_DOUBLE_LABEL=module1   # default userland: glibc + busybox, no python3
N=${CLUSTER:-workshop-dra}-control-plane
PYT="python3 -m pytest tests_env -m module1 --lab-config $W/lab.yaml -p no:cacheprovider -q -rA"
summary() { python3 -c "import json,sys; [print(r['verdict'].upper(), r['nodeid'].split('::')[-1], '|', r['message'][:300], '| FIX:', (r.get('remediation') or '')[:300]) for r in json.load(open(sys.argv[1]))['records']]" "$1"; }
say "host: driver layout"; nvidia-smi -L; ls -la /usr/local/nvidia/lib64/libnvidia-ml.so.1 /usr/local/nvidia/bin/nvidia-smi; ls -la /dev/nvidia*
say "RUN 1: provision + module 1 checks"
$PYT --results-json "$OUT/run1.json" > "$OUT/run1.txt" 2>&1; echo "pytest exit $?"; tail -3 "$OUT/run1.txt"; summary "$OUT/run1.json"
cp $W/kind-config.yaml "$OUT/kind-config.gpu-host.yaml"
say "the workshop's literal commands against the node"
{
cap docker exec $N python3 -c 1
cap docker exec $N nvidia-smi
cap docker exec $N sh -c 'command -v nvidia-cuda-mps-control nvidia-smi'
cap docker exec $N ps aux
cap docker exec $N nvidia-cuda-mps-control -d
cap docker exec $N sh -c 'LD_PRELOAD=libnvidia-ml.so.1 exec /lib64/ld-linux-x86-64.so.2 --list /usr/bin/nvidia-smi'
cap docker exec $N sh -c 'ls -la /usr/lib/x86_64-linux-gnu/ | grep -E "nvidia|cuda"; ls -la /dev/nvidia* /var/run/cdi; tail -5 /var/log/nvidia-mps/control.log'
cap docker inspect $N --format 'privileged={{.HostConfig.Privileged}} labels={{json .Config.Labels}}'
cap docker exec $N sh -c 'tail -20 /var/log/nvidia-mps/control.log /var/log/nvidia-mps/server.log'
say "by hand: the suite's client from the host (plain, then in the node's PID+IPC namespaces), server list"
PIPE=$(python3 -c "import yaml,sys; d=yaml.safe_load(open(sys.argv[1])); print(next(m['hostPath'] for n in d['nodes'] for m in n.get('extraMounts',[]) if m['containerPath']=='/tmp/nvidia-mps'))" $W/kind-config.yaml)
echo "pipe dir host side: $PIPE"
CUDA_MPS_PIPE_DIRECTORY=$PIPE timeout 60 python3 labcheck/cuda_client.py --hold 1 --lib-dir /usr/local/nvidia/lib64 </dev/null; echo "plain host client rc=$?"
CUDA_MPS_PIPE_DIRECTORY=$PIPE timeout 60 nsenter -t "$(docker inspect -f '{{.State.Pid}}' $N)" -p -i -- python3 labcheck/cuda_client.py --hold 1 --lib-dir /usr/local/nvidia/lib64 </dev/null; echo "nsenter client rc=$?"
SP=$(echo get_server_list | docker exec -i $N nvidia-cuda-mps-control | head -1); echo "get_server_list: $SP"
say "quit the node's MPS daemon"
echo quit | docker exec -i $N nvidia-cuda-mps-control; echo "quit rc=$?"; sleep 3
cap docker exec $N ps aux
} 2>&1 | tee "$OUT/node-captures.txt"
say "RUN 2: --no-provision after the daemon quit (mps-control and mps-server must fail with the fix)"
$PYT --no-provision --results-json "$OUT/run2.json" > "$OUT/run2.txt" 2>&1; echo "pytest exit $?"; tail -3 "$OUT/run2.txt"; summary "$OUT/run2.json"
say "cleanup"; python3 tests/doubles/kind delete cluster --name ${CLUSTER:-workshop-dra}; docker ps -a --format '{{.Names}} {{.Status}}'
