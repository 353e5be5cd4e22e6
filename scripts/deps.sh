#!/usr/bin/env bash
# Installs the Debian packages klab needs, once. Safe to re-run: it only calls apt-get when something is
# missing. Needs root (or sudo) the first time on a fresh machine.
set -euo pipefail

packages=(
  build-essential clang zlib1g-dev pkg-config      # klab and libklab (clang: libFuzzer targets)
  liblzo2-dev libsnappy-dev                          # kdump-compressed dumps: LZO and snappy pages (libklab)
  qemu-system-x86 qemu-system-arm qemu-utils         # the VMs
  gdb-multiarch python3                              # the debugger and its Python layer
  cpio libarchive-tools bc binutils strace           # independent cpio readers, nm and bc, strace (tests, bench)
  dpkg-dev ca-certificates                           # apt-get download / dpkg-deb for kernels and busybox
  kmod xz-utils                                      # modinfo and xz for the kernels' virtio modules (boot --swap)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross        # arm64 guest programs (labs/) and kernels
  flex bison libelf-dev libssl-dev linux-source-6.1  # source-built lab kernels (kernels/build.sh)
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients   # klab boot --backend libvirt
  libtirpc-dev                                       # linked into the ASan klab (Makefile: build/asan/klab)
  libvirt-daemon-system                              # its system daemon (qemu:///system; tests start it)
  openssh-server                                     # a "remote" host on 127.0.0.1 for qemu+ssh:// rooms (tests start it)
  python3-drgn crash libdw-dev                       # post-mortem: klab drgn, crash on klab dump's files, libdw (crash_compat.c)
  curl patch libncurses-dev texinfo libzstd-dev     # crash 8.0.6 built from source (scripts/crash-build.sh, make crash)
  lintian man-db                                     # make deb's checks, and man for its pages (tests)
  libxml2-utils chromium fonts-dejavu-core           # --svg pictures: xmllint, and headless rendering (tests)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# arm64 packages (busybox-static:arm64, the arm64 kernel) are fetched with apt-get download, which needs the
# foreign architecture known to apt. Nothing arm64 is installed on the host.
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "klab deps: adding the arm64 architecture to dpkg (for apt-get download of arm64 packages)"
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ]; then
  need_update=1
fi
if [ $need_update -eq 1 ]; then
  echo "klab deps: apt-get update"
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "klab deps: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
fi
