#!/usr/bin/env bash
# Fleet benchmark on the GPU host (issue 13 item 4): benchmarks/fleet.py with 1, 10 and 30 "hosts", each a real
# loopback sshd (tests/sshd.py) that runs `pytest -m module0` shipped by the fleet code over real ssh.
#
# The GPU host has no OpenSSH, no apt and no internet, so this carries Debian 12's sshd, ssh and ssh-keygen
# (.devwork/sshkit/sshkit.tar.xz, made by tests/gpu_host/build_sshkit.sh) and installs small wrappers at
# /usr/sbin/sshd, /usr/bin/ssh and /usr/bin/ssh-keygen that point LD_LIBRARY_PATH at the kit's libraries and
# exec the real binaries (sshd re-execs itself by its absolute argv[0], the real binary, with that environment;
# a session's environment is built by sshd and does not inherit it). A file already at a wrapper's path that is
# not one of these wrappers is never replaced: that tool is used as it is.
#
# Run from the repository root as root, carrying .devwork/sshkit, .devwork/whl312, .devwork/kit/dockerbin.tar.xz:
#     bash tests/gpu_host/fleet_gpu_host.sh              # the whole run; log in $OUT/fleet.log
#     bash tests/gpu_host/fleet_gpu_host.sh --ssh-only   # only install OpenSSH and prove a login (tests here)
# Settings (environment): OUT (/tmp/out), SSH_PREFIX (where the wrappers go, /), SSH_ROOT (the kit unpacks to
# $SSH_ROOT/ssh, /tmp), PY (python3), CV (the clean venv, /tmp/cv), DOCKERD (skip: do not start one),
# SIZES (1,10,30), RUNS (2), CPU_BY_COMMAND (unset; 1: --cpu-by-command for the first benchmark), K (unset: -k K for the first benchmark), ALSO_K (unset: a second benchmark with -k ALSO_K), ALSO_ARGS (a third, with -k ALSO_K and these fleet.py arguments), BUDGET (seconds for the whole script, 480: the benchmark gets what is left).
set -u -o pipefail
START=$(date +%s)
OUT=${OUT:-/tmp/out}
SSH_PREFIX=${SSH_PREFIX:-/}
SSH_ROOT=${SSH_ROOT:-/tmp}
PY=${PY:-python3}
CV=${CV:-/tmp/cv}
SIZES=${SIZES:-1,10,30}
RUNS=${RUNS:-2}
K=${K:-}  # a -k expression for the first benchmark (unset: every module 0 check)
ALSO_ARGS=${ALSO_ARGS:-}  # with ALSO_K: a third benchmark (sizes 1 and the largest) with these fleet.py arguments
ALSO_K=${ALSO_K:-}  # a -k expression: run the benchmark a second time without those checks
BUDGET=${BUDGET:-480}
CPU_BY_COMMAND=${CPU_BY_COMMAND:-}  # 1: the first benchmark also prints CPU per kind of process and imports by package
KIT=.devwork/sshkit/sshkit.tar.xz
DOCKER_KIT=.devwork/kit/dockerbin.tar.xz
MARK="# labcheck fleet_gpu_host.sh wrapper"
NV=/usr/local/nvidia/bin
STARTED_MPS=""
DOCKERD_PID=""

say() { echo; echo "=== $(date -u +%H:%M:%S) (+$(($(date +%s) - START)) s) $*"; }
die() { echo "fleet_gpu_host: $*" >&2; exit 1; }

machine() {
    say "machine"
    echo "nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg); $(id)"
    echo "python: $(command -v "$PY") ($("$PY" -V 2>&1)); base $("$PY" -c 'import sys; print(sys.base_prefix)')"
    for t in sshd ssh ssh-keygen docker nvidia-cuda-mps-control; do echo "$t: $(command -v $t || echo none)"; done
    grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
    # A session over ssh gets no LD_LIBRARY_PATH: its nvidia-smi and CUDA client find the driver by the ld cache.
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH-unset}; in the ld cache: $(ldconfig -p 2>/dev/null \
        | grep -Eo 'lib(cuda|nvidia-ml)\.so\.1 ' | sort -u | paste -sd' ')"
}

# --- OpenSSH from the kit -------------------------------------------------------------------------------------

wrapper() {  # wrapper PATH REAL: install a wrapper at PATH unless a file that is not ours is there
    local path=$SSH_PREFIX/$1 real=$2 lib=$SSH_ROOT/ssh/lib
    path=${path//\/\//\/}
    if [ -e "$path" ] || [ -L "$path" ]; then
        if ! grep -qF "$MARK" "$path" 2>/dev/null; then
            echo "$path exists and is not this script's wrapper: left as it is, used as it is"; return 0
        fi
    fi
    mkdir -p "$(dirname "$path")" || return 1
    printf '#!/bin/sh\n%s: the kit'"'"'s libraries for this program only, then the real binary\n' "$MARK" > "$path.tmp.$$"
    printf 'LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexport LD_LIBRARY_PATH\nexec %s "$@"\n' \
        "$lib" "$real" >> "$path.tmp.$$"
    chmod 755 "$path.tmp.$$" && mv -f "$path.tmp.$$" "$path" && echo "wrapper $path -> $real"
}

free_id() {  # free_id FILE: the lowest id from 100 to 999 not in FILE's third field
    local id
    for id in $(seq 100 999); do
        awk -F: -v id="$id" '$3 == id {found=1} END {exit !found}' "$1" 2>/dev/null || { echo "$id"; return 0; }
    done
    return 1
}

privsep() {  # what sshd needs to run: its privilege-separation user and folder, and a root it lets log in
    # Debian builds sshd with /run/sshd as its privilege-separation chroot (no /var/empty).
    [ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; } || return 1
    if grep -q '^sshd:' /etc/passwd; then
        echo "user sshd: present"
    elif command -v useradd >/dev/null; then
        useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin --user-group sshd \
            && echo "user sshd: added with useradd ($(grep '^sshd:' /etc/passwd))" || return 1
    else
        local gid uid
        gid=$(awk -F: '$1 == "sshd" {print $3}' /etc/group)
        if [ -z "$gid" ]; then
            gid=$(free_id /etc/group) || return 1
            echo "sshd:x:$gid:" >> /etc/group
        fi
        uid=$(free_id /etc/passwd) || return 1
        echo "sshd:x:$uid:$gid::/run/sshd:/usr/sbin/nologin" >> /etc/passwd
        echo "user sshd: appended to /etc/passwd and /etc/group (no useradd here): $(grep '^sshd:' /etc/passwd)"
    fi
    # Without PAM, sshd refuses every login to a locked account ('!' in /etc/shadow), keys too.
    if [ -f /etc/shadow ] && grep -q '^root:!' /etc/shadow; then
        sed -i 's/^root:![^:]*:/root:*:/' /etc/shadow && echo "root was locked in /etc/shadow: now '*' (no password)"
    fi
}

ssh_login_check() {  # a real sshd from the wrappers, a real login, and the session's environment
    local d port sshd="$SSH_PREFIX/usr/sbin/sshd" ssh="$SSH_PREFIX/usr/bin/ssh" keygen="$SSH_PREFIX/usr/bin/ssh-keygen"
    sshd=${sshd//\/\//\/}; ssh=${ssh//\/\//\/}; keygen=${keygen//\/\//\/}
    d=$(mktemp -d /tmp/fleet-sshcheck.XXXXXX) || return 1
    timeout 30 "$keygen" -q -t ed25519 -N '' -f "$d/host" && timeout 30 "$keygen" -q -t ed25519 -N '' -f "$d/id" \
        || { echo "ssh-keygen failed"; return 1; }
    cp "$d/id.pub" "$d/authorized_keys" && chmod 600 "$d/authorized_keys"
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 20000))
        printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $d/host" "PidFile $d/sshd.pid" \
            "AuthorizedKeysFile $d/authorized_keys" "PermitRootLogin prohibit-password" "PasswordAuthentication no" \
            "KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" "PrintMotd no" > "$d/sshd_config"
        timeout 30 "$sshd" -t -f "$d/sshd_config" || { echo "sshd -t failed"; return 1; }
        "$sshd" -D -e -f "$d/sshd_config" </dev/null >"$d/sshd.log" 2>&1 &
        local pid=$! out=""
        local login=(timeout 15 "$ssh" -p "$port" -i "$d/id" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
                     -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes root@127.0.0.1)
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            out=$("${login[@]}" 'echo "login ok as $(id -un); session LD_LIBRARY_PATH=${LD_LIBRARY_PATH-unset}; PATH=$PATH"' 2>&1) \
                && break
            out=""; sleep 0.2
        done
        if [ -n "$out" ]; then
            echo "sshd -t ok; $out"; "$ssh" -V 2>&1
            # execnet speaks over the session's stdout: a login script that prints there would break every host.
            out=$("${login[@]}" true 2>/dev/null)
            [ -z "$out" ] && echo "a session prints nothing of its own: ok" \
                || echo "WARNING: a session prints before the command (a login script?): $out"
            kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$d"; return 0
        fi
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        grep -q "Address already in use" "$d/sshd.log" || break
    done
    echo "no login through the kit's sshd (port $port); its log:"; tail -20 "$d/sshd.log"; return 1
}

install_ssh() {
    say "OpenSSH from $KIT ($(stat -c %s "$KIT" 2>/dev/null || echo missing) bytes) into $SSH_ROOT/ssh"
    [ -f "$KIT" ] || die "$KIT not found: carry .devwork/sshkit (made by tests/gpu_host/build_sshkit.sh)"
    rm -rf "$SSH_ROOT/ssh" && mkdir -p "$SSH_ROOT" && timeout 60 tar -C "$SSH_ROOT" -xJf "$KIT" || die "cannot unpack $KIT"
    head -3 "$SSH_ROOT/ssh/VERSIONS"
    local b missing=""
    for b in "$SSH_ROOT"/ssh/bin/*; do
        missing="$missing$(LD_LIBRARY_PATH=$SSH_ROOT/ssh/lib ldd "$b" 2>&1 | grep 'not found' | sed "s#^#${b##*/}: #")
"
    done
    missing=$(echo "$missing" | sed '/^$/d')
    [ -z "$missing" ] || die "libraries the kit expects on this host are missing (rebuild with build_sshkit.sh --all):
$missing"
    echo "ldd: every library of sshd, ssh and ssh-keygen found (kit: $(ls "$SSH_ROOT/ssh/lib" | paste -sd' '))"
    wrapper usr/sbin/sshd "$SSH_ROOT/ssh/bin/sshd" && wrapper usr/bin/ssh "$SSH_ROOT/ssh/bin/ssh" \
        && wrapper usr/bin/ssh-keygen "$SSH_ROOT/ssh/bin/ssh-keygen" || die "cannot install the wrappers"
    privsep || die "cannot create what sshd needs (user sshd, /run/sshd)"
    ssh_login_check || die "the kit's sshd does not take a login"
}

# --- the rest of the GPU host's set-up -------------------------------------------------------------------------

start_dockerd() {
    if [ "${DOCKERD:-}" = skip ]; then say "dockerd: skipped (DOCKERD=skip)"; return 0; fi
    say "dockerd from $DOCKER_KIT"
    if [ ! -f "$DOCKER_KIT" ]; then
        echo "WARNING: $DOCKER_KIT not carried: no engine, so the docker checks fail on every host alike"; return 0
    fi
    timeout 120 tar -C /tmp -xJf "$DOCKER_KIT" || die "cannot unpack $DOCKER_KIT"
    # The CLI where a session over ssh finds it too (sshd gives root /usr/local/sbin:/usr/local/bin:/usr/sbin:...).
    if ! command -v docker >/dev/null && [ ! -e /usr/local/bin/docker ]; then
        ln -s /tmp/dk/bin/docker /usr/local/bin/docker && echo "docker CLI: /usr/local/bin/docker -> /tmp/dk/bin/docker"
    fi
    PATH=/tmp/dk/bin:$PATH LD_LIBRARY_PATH=/tmp/dk/lib setsid dockerd --iptables=false --ip-masq=false \
        --bridge=none </dev/null >"$OUT/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    local cli
    cli=$(command -v docker || echo /tmp/dk/bin/docker)
    local deadline=$(($(date +%s) + 40))
    until timeout 5 "$cli" info >/dev/null 2>&1 || [ "$(date +%s)" -ge "$deadline" ]; do sleep 1; done
    timeout 10 "$cli" version --format 'docker CLI {{.Client.Version}}, engine {{.Server.Version}}' \
        || { tail -20 "$OUT/dockerd.log"; echo "no engine: the docker checks fail on every host alike"; }
}

start_mps() {
    local ctl
    ctl=$(command -v nvidia-cuda-mps-control || ls "$NV/nvidia-cuda-mps-control" 2>/dev/null)
    if [ -z "$ctl" ]; then say "MPS: no nvidia-cuda-mps-control here, none started"; return 0; fi
    say "MPS: one control daemon for all hosts (each host's suite finds it running, so neither starts nor stops it)"
    if ps -eo comm= | grep -qx nvidia-cuda-mps; then
        echo "a control daemon already runs: used, not stopped at the end"; return 0
    fi
    mkdir -p /tmp/nvidia-mps /var/log/nvidia-mps
    CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps CUDA_MPS_LOG_DIRECTORY=/var/log/nvidia-mps timeout 30 "$ctl" -d \
        </dev/null >/dev/null 2>&1 && STARTED_MPS=$ctl
    echo get_server_list | CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps timeout 10 "$ctl" >/dev/null 2>&1 \
        && echo "started $ctl -d: it answers on /tmp/nvidia-mps" || echo "WARNING: $ctl -d does not answer"
    ps -eo pid,args | grep '[n]vidia-cuda-mps'
}

clean_venv() {  # as .devwork/speed_base.sh: no site packages of the machine's Python
    say "clean venv $CV"
    rm -rf "$CV"
    timeout 60 "$PY" -m venv --without-pip "$CV" || die "cannot make the venv $CV"
    local sp
    sp=$("$CV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    timeout 240 "$PY" -m pip install -q --no-index --no-deps --target "$sp" .devwork/whl312/*.whl 2>&1 \
        | grep -v WARNING
    echo "$PWD" > "$sp/labcheck-src.pth"
    "$CV/bin/python" -c 'import sys, pytest, xdist, execnet, docker, yaml; print(sys.executable, sys.version.split()[0], "pytest", pytest.__version__, "xdist", xdist.__version__)' \
        || die "the clean venv lacks the wheels (.devwork/whl312)"
}

remote_python_check() {  # what fleet.py's hosts run: sys.executable over ssh, through tests/sshd.py's servers
    say "the clean venv's python over ssh (fleet.py's inventory names sys.executable as every host's python)"
    timeout 60 "$CV/bin/python" - <<'PY' || die "a host over ssh does not run the clean venv's python with its wheels"
import os, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, os.getcwd())
from tests.needs import missing
from tests.sshd import ClientKey, Sshd
print("tests.needs sshd:", missing("sshd") or "available")
with tempfile.TemporaryDirectory(prefix="fleet-gpu-check-") as tmp:
    key = ClientKey.generate(Path(tmp))
    server = Sshd(Path(tmp) / "s", key).start()
    try:
        code = "import sys, pytest, xdist, docker, yaml; print(sys.executable, pytest.__file__)"
        res = subprocess.run(["ssh", "-p", str(server.port), *key.ssh_options(), "root@127.0.0.1",
                              sys.executable, "-c", f"'{code}'"], capture_output=True, text=True, timeout=30)
        print("remote:", res.returncode, res.stdout.strip(), res.stderr.strip())
        sys.exit(res.returncode)
    finally:
        server.stop()
PY
}

benchmark() {
    local left=$((BUDGET - ($(date +%s) - START) - 30))
    say "benchmarks/fleet.py --runs $RUNS --sizes $SIZES${K:+ -k '$K'} (at most $left s)"
    [ "$left" -gt 60 ] || die "no time left for the benchmark"
    PYTHONUNBUFFERED=1 timeout -k 10 "$left" "$CV/bin/python" benchmarks/fleet.py --runs "$RUNS" --sizes "$SIZES" \
        ${K:+-k "$K"} ${CPU_BY_COMMAND:+--cpu-by-command}
    echo "fleet.py exit $?"
    [ -n "$ALSO_K" ] || return 0
    # Again without the checks named by ALSO_K (e.g. the CUDA client: every simulated host's client shares this
    # machine's one GPU and MPS server, which a fleet of machines would not).
    left=$((BUDGET - ($(date +%s) - START) - 30))
    say "benchmarks/fleet.py --runs $RUNS --sizes $SIZES -k '$ALSO_K' (at most $left s)"
    [ "$left" -gt 60 ] || die "no time left for the second benchmark"
    PYTHONUNBUFFERED=1 timeout -k 10 "$left" "$CV/bin/python" benchmarks/fleet.py --runs "$RUNS" --sizes "$SIZES" \
        -k "$ALSO_K"
    echo "fleet.py exit $?"
    [ -n "$ALSO_ARGS" ] || return 0
    # A third time, sizes 1 and the largest, with extra fleet.py arguments (e.g. an inventory ssh option).
    left=$((BUDGET - ($(date +%s) - START) - 30))
    say "benchmarks/fleet.py --runs $RUNS --sizes 1,${SIZES##*,} -k '$ALSO_K' $ALSO_ARGS (at most $left s)"
    [ "$left" -gt 45 ] || die "no time left for the third benchmark"
    # shellcheck disable=SC2086 # ALSO_ARGS is a list of words
    PYTHONUNBUFFERED=1 timeout -k 10 "$left" "$CV/bin/python" benchmarks/fleet.py --runs "$RUNS" \
        --sizes "1,${SIZES##*,}" -k "$ALSO_K" $ALSO_ARGS
    echo "fleet.py exit $?"
}

cleanup() {
    say "end: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "$STARTED_MPS" ]; then
        echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps timeout 20 "$STARTED_MPS" >/dev/null 2>&1
        sleep 1; ps -eo pid,args | grep '[n]vidia-cuda-mps' || echo "MPS daemon quit"
    fi
    if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID" 2>/dev/null && echo "dockerd (pid $DOCKERD_PID) stopped"; fi
}

main() {
    machine
    install_ssh
    [ "${1:-}" = --ssh-only ] && return 0
    trap cleanup EXIT
    start_dockerd
    start_mps
    clean_venv
    remote_python_check
    benchmark
}

mkdir -p "$OUT"
main "$@" 2>&1 | tee -a "$OUT/fleet.log"
exit "${PIPESTATUS[0]}"
