#!/usr/bin/env bash
# Final check on the real GPU host: bare `pytest` (module 0 + module 1 in one run) with a real dockerd,
# the kind test double for the node container, then a second run under xdist, teardown, and the benchmark.
set -u
D=$PWD/.devwork/final
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/final.log") 2>&1
say() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
mkdir -p /tmp/dk && tar -C /tmp/dk -xJf "$D/dockerbin.tar.xz"
export PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$D"/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
(dockerd --iptables=false --ip-masq=false --bridge=none >"$OUT/dockerd.log" 2>&1 &)
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker version --format 'engine {{.Server.Version}}' || { tail -30 "$OUT/dockerd.log"; exit 1; }
W=/tmp/final; mkdir -p $W
cat > $W/lab.yaml <<YAML
node_image: "labcheck-kind-double/node:v1.34.0"
kind_config_path: $W/kind-config.yaml
state_dir: $W/state
kind_binary: $PWD/tests/doubles/kind
YAML
export KIND_DOUBLE_USERLAND=host KIND_DOUBLE_BUSYBOX=$D/busybox KIND_DOUBLE_LABEL=final
P="python3 -m pytest --lab-config=$W/lab.yaml -p no:cacheprovider -q -rfEs"
say "RUN 0: module 0 alone; afterwards no host MPS process may remain (the suite started it, so it stops it)"
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process before"
timeout 120 $P -m module0 -k mps -rA | grep -E "PASS|FAIL|WARN|passed|failed|labcheck"
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process after RUN 0"
ls -la /tmp/dra-labcheck-0/ 2>&1; cat /tmp/dra-labcheck-0/*.json 2>&1; tail -5 /var/log/nvidia-mps/control.log
say "RUN 1: bare pytest = module 0 + module 1, serial, with HTML and JSON"
timeout 240 $P --html=$OUT/report.html --self-contained-html --results-json=$OUT/run1.json | tail -40
python3 -c "import json; [print(r['verdict'].upper(), r['module'], r['check'], '-', r['message'][:140]) for r in json.load(open('$OUT/run1.json'))['records']]"
say "host MPS processes after run 1 (the host daemon module 0 started must be gone)"
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process"
docker exec workshop-dra-control-plane ps -o pid,ppid,stat,args | grep '[m]ps'
say "RUN 2: again under xdist -n 4 (idempotent: reuse cluster and node daemon)"
timeout 200 $P -n 4 --results-json=$OUT/run2.json | tail -15
say "RUN 3: --teardown"
timeout 120 $P -m module1 -k node_container_running --teardown | tail -5
docker ps -a --format '{{.Names}} {{.Status}}'
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process"
say "RUN 4: from scratch under xdist -n 4 (module 0 and module 1 on different workers share the pipe dir)"
timeout 200 $P -n 4 --results-json=$OUT/run4.json | grep -E "FAIL|passed|failed|READY"
python3 -c "import json; [print(r['verdict'].upper(), r['check'], '-', r['message'][:120]) for r in json.load(open('$OUT/run4.json'))['records'] if 'mps' in r['check']]"
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps'
say "RUN 5: --teardown"
timeout 120 $P -m module1 -k node_container_running --teardown | tail -3
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process"
say "project tests marked gpu"
timeout 150 python3 -m pytest tests -m gpu -p no:cacheprovider -q -rA 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" | tail -15
ps -eo pid,ppid,stat,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process at the end"
say done
