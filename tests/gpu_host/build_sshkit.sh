#!/usr/bin/env bash
# Build the carried OpenSSH kit for the GPU host (no sshd, ssh or ssh-keygen there, no apt, no internet):
# Debian 12's openssh-server and openssh-client binaries (sshd, ssh, ssh-keygen) plus the shared libraries
# of theirs that the GPU host's image lacks, as ONE tar.xz. Run on a Debian 12 machine with apt:
#
#     tests/gpu_host/build_sshkit.sh DEST_DIR [--all]      # writes DEST_DIR/sshkit.tar.xz
#
# Why not every library: a device call carries at most 64 MiB (working tree + carried paths) and the docker
# kit plus the wheels already take about 60 MiB of it, so the kit carries only what that image lacks:
# libwrap/libnsl/libtirpc (absent from its ldconfig cache, tests/data/h100-host/ldconfig-p.txt, same image
# and driver) and the Kerberos family (not in a plain Ubuntu 24.04 base). HOST_LIBS are those every Ubuntu
# 24.04 with Python 3.12 has (its base image; libssl3t64 for python3.12); fleet_gpu_host.sh checks with ldd
# that nothing is missing before it starts. --all also carries HOST_LIBS (about 4.3 MB instead of 1.2 MB).
# No sftp-server: tests/sshd.py configures "Subsystem sftp internal-sftp" and execnet does not use sftp.
set -euo pipefail
DEST=${1:?usage: build_sshkit.sh DEST_DIR [--all]}
ALL=${2:-}
CARRY_LIBS="libwrap.so.0 libnsl.so.2 libtirpc.so.3 libgssapi_krb5.so.2 libkrb5.so.3 libk5crypto.so.3
libkrb5support.so.0 libkeyutils.so.1 libcom_err.so.2"
HOST_LIBS="libcrypt.so.1 libaudit.so.1 libpam.so.0 libsystemd.so.0 libselinux.so.1 libcrypto.so.3 libz.so.1
libcap-ng.so.0 libcap.so.2 libgcrypt.so.20 liblzma.so.5 libzstd.so.1 liblz4.so.1 libpcre2-8.so.0 libgpg-error.so.0"
GLIBC_LIBS="linux-vdso.so.1 libc.so.6 libresolv.so.2 ld-linux-x86-64.so.2 libm.so.6 libpthread.so.0 libdl.so.2"
[ "$ALL" = "--all" ] && CARRY_LIBS="$CARRY_LIBS $HOST_LIBS" && HOST_LIBS=""

WORK=$(mktemp -d /tmp/sshkit-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download -q openssh-server openssh-client 2>&1 | grep -v '^W: Download is performed unsandboxed')
for deb in "$WORK"/*.deb; do dpkg -x "$deb" "$WORK/root"; done
K=$WORK/kit/ssh
mkdir -p "$K/bin" "$K/lib"
cp "$WORK/root/usr/sbin/sshd" "$WORK/root/usr/bin/ssh" "$WORK/root/usr/bin/ssh-keygen" "$K/bin/"

# Every library the three binaries load must be either carried, expected on the host, or glibc's.
needed=$(for b in "$K"/bin/*; do ldd "$b"; done | awk '{print $1}' | sed 's#.*/##' | sort -u)
for so in $needed; do
    case " $(echo $CARRY_LIBS $HOST_LIBS $GLIBC_LIBS) " in
        *" $so "*) ;;
        *) echo "build_sshkit: $so is needed but neither carried nor expected on the host: add it to a list" >&2
           exit 1 ;;
    esac
done
for so in $CARRY_LIBS; do
    path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ {print $NF; exit}')
    [ -n "$path" ] || { echo "build_sshkit: $so not found here (apt-get install the package that has it)" >&2; exit 1; }
    cp -L "$path" "$K/lib/$so"
done
echo "$HOST_LIBS" | tr ' ' '\n' | sed '/^$/d' > "$K/HOST_LIBS"
{
    echo "Debian $(cat /etc/debian_version), built $(date -u +%Y-%m-%dT%H:%MZ)"
    for deb in "$WORK"/*.deb; do dpkg-deb -f "$deb" Package Version | paste -sd' '; done
    for so in $CARRY_LIBS; do  # merged /usr: dpkg knows a library by one of its two paths
        pkg=$(dpkg -S "/lib/x86_64-linux-gnu/$so" "/usr/lib/x86_64-linux-gnu/$so" 2>/dev/null | sed 's#: .*##' | head -1 || true)
        echo "$so from ${pkg:-an unknown package} $(dpkg-query -W -f '${Version}' "${pkg%%:*}" 2>/dev/null || true)"
    done
    (cd "$K" && sha256sum bin/* lib/*)
} > "$K/VERSIONS"
mkdir -p "$DEST"
tar -C "$WORK/kit" -cf - ssh | xz -9e > "$DEST/sshkit.tar.xz.tmp"
mv "$DEST/sshkit.tar.xz.tmp" "$DEST/sshkit.tar.xz"
echo "wrote $DEST/sshkit.tar.xz ($(stat -c %s "$DEST/sshkit.tar.xz") bytes): $(ls "$K/bin" | paste -sd' '); libs: $(ls "$K/lib" | paste -sd' ')"
