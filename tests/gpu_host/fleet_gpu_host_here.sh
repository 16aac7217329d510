#!/usr/bin/env bash
# Try tests/gpu_host/fleet_gpu_host.sh on the build VM (Debian 12, root) before the one call on the GPU host,
# without touching this machine's own sshd, ssh, ssh-keygen or users. Run from the repository root, with the
# kit at .devwork/sshkit/sshkit.tar.xz (tests/gpu_host/build_sshkit.sh):
#
#   tests/gpu_host/fleet_gpu_host_here.sh chroot    # --ssh-only in a chroot holding only glibc, the libraries
#       the kit expects on the host (ssh/HOST_LIBS, copied from here), bash, ldd and a static busybox: proves the
#       kit's libraries suffice, the wrappers, the /etc/passwd fallback (no useradd) and a locked root's unlock
#   tests/gpu_host/fleet_gpu_host_here.sh overlay [VAR=VALUE...]   # the whole script in a private mount
#       namespace where /usr/bin, /usr/sbin and /etc are overlays (writes land in a tmpfs) without this machine's
#       OpenSSH and sshd user: wrappers at the real paths, useradd, clean venv, fleet.py. Defaults below; pass
#       e.g. SIZES=1,3 RUNS=1. A cp312 wheel folder at .devwork/whl312 and a Python 3.12 (PY) are needed.
set -eu
MODE=${1:?usage: fleet_gpu_host_here.sh chroot|overlay [VAR=VALUE...]}; shift
BUSYBOX=${BUSYBOX:-$(command -v busybox || echo /work/main/.devwork/kit/busybox)}
WORK=$(mktemp -d /tmp/fleet-here.XXXXXX)
REPO=$PWD

case "$MODE" in
chroot)
    C=$WORK/root L=lib/x86_64-linux-gnu
    mkdir -p "$C"/{bin,lib64,$L,usr/bin,usr/sbin,etc,root,tmp,run,dev,proc,repo/tests/gpu_host,repo/.devwork/sshkit}
    chmod 1777 "$C/tmp"
    host_libs=$(tar -xJOf .devwork/sshkit/sshkit.tar.xz ssh/HOST_LIBS)
    for so in libc.so.6 libresolv.so.2 libm.so.6 ld-linux-x86-64.so.2 libtinfo.so.6 $host_libs; do
        cp -L "/$L/$so" "$C/$L/"
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$C/lib64/"; cp /bin/bash "$C/bin/"; cp /usr/bin/ldd "$C/usr/bin/"
    cp "$BUSYBOX" "$C/bin/busybox"
    for a in $("$C/bin/busybox" --list); do [ -e "$C/bin/$a" ] || ln -s busybox "$C/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$C/etc/passwd"; echo 'root:x:0:' > "$C/etc/group"
    echo 'root:!:20228:0:99999:7:::' > "$C/etc/shadow"  # locked, as some images ship it
    cp tests/gpu_host/fleet_gpu_host.sh "$C/repo/tests/gpu_host/"; cp .devwork/sshkit/sshkit.tar.xz "$C/repo/.devwork/sshkit/"
    unshare --mount --fork sh -c "mount --bind /dev '$C/dev' && mount -t proc proc '$C/proc' && chroot '$C' /bin/bash -c \
        'cd /repo && PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin OUT=/tmp/out bash tests/gpu_host/fleet_gpu_host.sh --ssh-only'"
    echo "--- chroot /etc/passwd, /etc/shadow after:"; cat "$C/etc/passwd" "$C/etc/shadow"
    ;;
overlay)
    unshare --mount --fork bash -c '
        set -eu
        mount -t tmpfs tmpfs "$0"
        for d in /usr/bin /usr/sbin /etc; do
            n=$(echo $d | tr / _); mkdir -p "$0/$n/up" "$0/$n/work"
            mount -t overlay overlay -o "lowerdir=$d,upperdir=$0/$n/up,workdir=$0/$n/work" $d
        done
        rm -f /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen
        sed -i "/^sshd:/d" /etc/passwd /etc/group /etc/shadow /etc/gshadow
        cd "$1"; shift 2
        env SSH_ROOT="$0/kit" CV="$0/cv" OUT="$0/out" DOCKERD=skip SIZES=1,3 RUNS=1 \
            PY="${PY:-/root/.pyenv/versions/3.12.1/bin/python3}" "$@" bash tests/gpu_host/fleet_gpu_host.sh
        echo "--- in the namespace after: $(head -1 /usr/sbin/sshd); $(grep "^sshd:" /etc/passwd)"
    ' "$WORK" "$REPO" -- "$@"
    ;;
*) echo "usage: fleet_gpu_host_here.sh chroot|overlay [VAR=VALUE...]" >&2; exit 2 ;;
esac
echo "--- outside: $(ls -l /usr/sbin/sshd 2>&1)"
rm -rf "$WORK"
