#!/usr/bin/env bash
# The merged product on the GPU host (device tool), in one call: a real dockerd (Debian's binaries from the kit),
# module 0 alone, then a bare `pytest` (module 0 + module 1) whose node container the kind double makes from the
# GENERATED config on the host's /usr/local/nvidia layout (node userland glibc + busybox, NO python3, like
# kindest/node), then the node's MPS daemon is quit and module 1 runs again with --no-provision, then the project's
# gpu-marked tests. Usage, from the repo root there: bash tests/gpu_host/final_gpu_host.sh (needs .devwork/kit).
set -u
K=$PWD/.devwork/kit; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/final.log") 2>&1
say() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
tar -C /tmp -xJf "$K/dockerbin.tar.xz"; export PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$K"/whl/*.whl 2>&1 | grep -v WARNING
export PYTHONPATH=/tmp/site:$PWD
(setsid dockerd --iptables=false --ip-masq=false --bridge=none >/tmp/dockerd.log 2>&1 &)
for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker version --format 'engine {{.Server.Version}}' || { tail -20 /tmp/dockerd.log; exit 1; }
W=/tmp/final; rm -rf $W; mkdir -p $W
cat > $W/lab.yaml <<YAML
node_image: "labcheck-kind-double/node:v1.34.0"
kind_config_path: $W/kind-config.yaml
state_dir: $W/state
kind_binary: $PWD/tests/doubles/kind
YAML
export KIND_DOUBLE_BUSYBOX=$K/busybox KIND_DOUBLE_LABEL=final
N=workshop-dra-control-plane
P="python3 -m pytest --lab-config=$W/lab.yaml -p no:cacheprovider -q -rfEs"
summary() { python3 -c "
import json,sys
d=json.load(open(sys.argv[1])); s=d.get('summary',{})
print('SUMMARY', s.get('state'), '|', s.get('line', ''))
for r in d['records']: print(r['verdict'].upper(), r['module'], r['check'], '|', r['message'][:220], '| FIX:', (r.get('remediation') or '')[:200])
" "$1"; }
say "host"; nvidia-smi -L; uname -r; ps -eo pid,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process before"
say "RUN A: module 0 alone"
$P tests_env -m module0 --results-json=$OUT/module0.json > $W/a.txt 2>&1; echo "pytest exit $?"; tail -4 $W/a.txt
summary $OUT/module0.json
ps -eo pid,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process after module 0 (the suite stopped the daemon it started)"
say "RUN B: bare pytest = module 0 + module 1 (kind double, node without python3), HTML + JSON"
$P --html=$OUT/report.html --self-contained-html --results-json=$OUT/bare.json > $W/b.txt 2>&1; echo "pytest exit $?"
tail -25 $W/b.txt; summary $OUT/bare.json
cp $W/kind-config.yaml $OUT/kind-config.generated.yaml
say "RUN B2: the same bare pytest again (safe to run twice: module 0 now meets the node's MPS daemon on the shared pipe dir)"
$P --results-json=$OUT/bare2.json > $W/b2.txt 2>&1; echo "pytest exit $?"; tail -3 $W/b2.txt
summary $OUT/bare2.json | grep -E "SUMMARY|FAIL|mps"
say "the workshop's literal commands"
for c in "python3 -c 1" "nvidia-smi -L" "sh -c 'command -v nvidia-cuda-mps-control'" "ps aux"; do
  echo "\$ docker exec $N $c"; eval timeout 60 docker exec $N $c; echo "[exit $?]"; done
echo get_server_list | docker exec -i $N nvidia-cuda-mps-control; echo "[get_server_list exit $?]"
say "quit the node daemon, then module 1 with --no-provision"
echo quit | docker exec -i $N nvidia-cuda-mps-control; sleep 3
$P tests_env -m module1 --no-provision --results-json=$OUT/noprov.json > $W/c.txt 2>&1; echo "pytest exit $?"
tail -3 $W/c.txt; summary $OUT/noprov.json | grep -E "SUMMARY|mps|seed"
say "RUN D: again, provisioning (idempotent: reuses the cluster, restarts the node daemon)"
$P tests_env -m module1 --results-json=$W/d.json > $W/d.txt 2>&1; echo "pytest exit $?"; summary $W/d.json | grep -E "SUMMARY|cluster_provisioned|mps|seed"
say "teardown"; $P tests_env -m module1 -k node_container_running --teardown > /dev/null 2>&1; docker ps -a --format '{{.Names}} {{.Status}}'
ps -eo pid,args | grep '[n]vidia-cuda-mps' || echo "no host MPS process"
say "project tests marked gpu"
timeout 200 python3 -m pytest tests -m gpu -p no:cacheprovider -q -rA 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" | tail -20
say done
