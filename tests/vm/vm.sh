#!/bin/bash
# Debian's own kernels in qemu (TCG), for running the root kernel tests on the kernels users
# run. Everything is cached under $PROFILER_CACHE/kernel-vm; Debian's mirror is the one this
# host's apt sources name, used through a private apt configuration (the host's is untouched).
#
# usage: vm.sh install                 qemu (bookworm's 7.2 conflicts with the backports
#                                      qemu-utils these machines carry: take 10.x from backports)
#        vm.sh setup KERNEL            fetch Debian's package of KERNEL and build its disk image
#        vm.sh run KERNEL DIR          boot KERNEL, copy DIR into the guest (/mnt/xfer), run its
#                                      cmd.sh as root, print its output, copy /mnt/xfer/out back
#                                      to DIR/out, exit with its status
#        vm.sh kernel NAME             the package of kernel NAME (6.1 or 6.12)
# env:   PROFILER_CACHE (default /var/cache/profiler-build)  VM_TIMEOUT (s, default 900)
set -euo pipefail

TOP=${PROFILER_CACHE:-/var/cache/profiler-build}/kernel-vm
HERE=$(cd "$(dirname "$0")" && pwd)
APT_CONFIG_FILE=$TOP/apt/apt.conf
# Bump when the guest root's packages or vm-init change.
ROOT_REV=1
ROOTFS_TAR=$TOP/rootfs-bookworm-r$ROOT_REV.tar.zst

# The matrix: a short name and the names of Debian's cloud kernel packages of that line (the
# newest one is taken and cached; security updates replace them in the archive): Debian 12's
# 6.1 and Debian 13's 6.12.
KERNELS='6.1 ^linux-image-6\.1\.0-[0-9]+-cloud-amd64$
6.12 ^linux-image-6\.12\.[0-9]+\+deb13-cloud-amd64$'

die() { echo "vm.sh: $*" >&2; exit 2; }

# The URI this host's apt sources give for SUITE (deb822 or one-line format).
host_uri() {
  local u
  u=$(awk -v s="$1" '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i==s){print u; exit}}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$u" ] || u=$(awk -v s="$1" '$1=="deb" {for(i=2;i<=NF;i++) if($i==s){print $(i-1); exit}}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 || true)
  echo "$u"
}

apt_private() {
  [ -f "$APT_CONFIG_FILE" ] && return
  local main security
  main=$(host_uri bookworm); security=$(host_uri bookworm-security)
  [ -n "$main" ] && [ -n "$security" ] || die "no Debian mirror for bookworm and bookworm-security in this host's apt sources"
  mkdir -p "$TOP"/apt/{etc/empty.d,lists/partial,cache/archives/partial}
  local key="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
  cat >"$TOP/apt/etc/sources.list" <<EOF
deb $key $main bookworm main
deb $key $main bookworm-backports main
deb $key $main trixie main
deb $key $security bookworm-security main
EOF
  cat >"$APT_CONFIG_FILE.tmp" <<EOF
Dir::Etc::sourcelist "$TOP/apt/etc/sources.list";
Dir::Etc::sourceparts "$TOP/apt/etc/empty.d";
Dir::Etc::preferencesparts "$TOP/apt/etc/empty.d";
Dir::State::lists "$TOP/apt/lists";
Dir::Cache "$TOP/apt/cache";
EOF
  APT_CONFIG=$APT_CONFIG_FILE.tmp apt-get update -qq
  mv "$APT_CONFIG_FILE.tmp" "$APT_CONFIG_FILE"
}

cmd_install() {
  command -v qemu-system-x86_64 >/dev/null && command -v debugfs >/dev/null && return
  apt_private
  local d; d=$(mktemp -d)
  (cd "$d" && APT_CONFIG=$APT_CONFIG_FILE apt-get download -qq -t bookworm-backports \
    qemu-system-x86 qemu-system-common qemu-system-data seabios 2>&1 | grep -v unsandboxed || true)
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq "$d"/*.deb e2fsprogs zstd debootstrap >/dev/null
  rm -rf "$d"
}

# The package of kernel NAME: the one cached, else the newest in the archive.
kernel_package() {
  local pattern cached
  pattern=$(echo "$KERNELS" | awk -v n="$1" '$1==n {print $2}')
  [ -n "$pattern" ] || die "unknown kernel $1 (known: $(echo "$KERNELS" | awk '{print $1}' | xargs))"
  cached=$(ls "$TOP/kernels" 2>/dev/null | sed -n 's/_.*\.deb$//p' | grep -E "$pattern" | sort -V | tail -1 || true)
  if [ -n "$cached" ]; then echo "$cached"; return; fi
  apt_private
  APT_CONFIG=$APT_CONFIG_FILE apt-cache search --names-only "$pattern" | awk '{print $1}' | sort -V | tail -1 | grep . \
    || die "no package matching $pattern in Debian's archive"
}

rootfs() {
  [ -f "$ROOTFS_TAR" ] && return
  local d=$TOP/rootfs.$$ mirror
  mirror=$(host_uri bookworm)
  rm -rf "$d"; mkdir -p "$d"
  debootstrap --variant=minbase --include=iproute2,procps,kmod,util-linux,python3 bookworm "$d" "$mirror" \
    >"$TOP/debootstrap.log" 2>&1 || { tail -20 "$TOP/debootstrap.log" >&2; exit 1; }
  rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/lib/apt/lists/* "$d"/usr/share/{doc,man,locale}/*
  echo vm >"$d/etc/hostname"; : >"$d/etc/fstab"; mkdir -p "$d/mnt/xfer"
  tar -C "$d" --numeric-owner -cf - . | zstd -q -T2 -o "$ROOTFS_TAR.tmp" -f && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$d"
}

cmd_setup() {
  local name=$1 pkg kver img
  cmd_install
  pkg=$(kernel_package "$name")
  kver=${pkg#linux-image-}
  img=$TOP/images/$kver-r$ROOT_REV.img
  [ -f "$img" ] && [ -f "$TOP/kernels/x/$kver/boot/vmlinuz-$kver" ] && return
  apt_private
  mkdir -p "$TOP/kernels" "$TOP/images"
  (cd "$TOP/kernels" && { ls "${pkg}"_*.deb >/dev/null 2>&1 || APT_CONFIG=$APT_CONFIG_FILE apt-get download -qq "$pkg" 2>&1 | grep -v unsandboxed || true; })
  local deb; deb=$(ls "$TOP/kernels/${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "could not download $pkg"
  rm -rf "$TOP/kernels/x/$kver"; mkdir -p "$TOP/kernels/x/$kver"
  dpkg-deb -x "$deb" "$TOP/kernels/x/$kver"
  rootfs
  local d=$TOP/images/$kver.d
  rm -rf "$d"; mkdir -p "$d"
  zstd -dc "$ROOTFS_TAR" | tar -C "$d" --numeric-owner -xf -
  # Debian 12 ships modules in /lib/modules, 13 in /usr/lib/modules.
  local m
  for m in lib/modules usr/lib/modules; do
    [ -d "$TOP/kernels/x/$kver/$m" ] && cp -a "$TOP/kernels/x/$kver/$m/." "$d/usr/lib/modules/"
  done
  chroot "$d" /usr/sbin/depmod "$kver"
  install -m 755 "$HERE/vm-init" "$d/sbin/vm-init"
  rm -f "$img.tmp"; truncate -s 2G "$img.tmp"
  mkfs.ext4 -q -F -L vmroot -d "$d" "$img.tmp" && mv "$img.tmp" "$img"
  rm -rf "$d"
}

cmd_run() {
  local name=$1 dir=$2 pkg kver img
  pkg=$(kernel_package "$name"); kver=${pkg#linux-image-}
  img=$TOP/images/$kver-r$ROOT_REV.img
  [ -f "$img" ] || die "no image for $name (vm.sh setup $name)"
  [ -f "$dir/cmd.sh" ] || die "$dir/cmd.sh is missing"
  # Global, not local: the EXIT trap runs after this function has returned.
  RUN_DIR=$(mktemp -d "$TOP/run.XXXXXX")
  trap 'rm -rf "$RUN_DIR"' EXIT
  local run=$RUN_DIR
  local mb; mb=$(( $(du -sm "$dir" | cut -f1) * 2 + 256 ))
  truncate -s "${mb}M" "$run/xfer.img"
  mkfs.ext4 -q -F -d "$dir" "$run/xfer.img"
  : >"$run/console.log"; : >"$run/out.log"
  tail -f "$run/out.log" & local tailpid=$!
  local qrc=0
  # TCG: these machines have no vmx/svm, and KVM without them is far slower than TCG.
  timeout "${VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -machine q35 \
    -m "${VM_MEM:-1536}" -smp "${VM_CPUS:-2}" -nodefaults -display none -no-reboot \
    -kernel "$TOP/kernels/x/$kver/boot/vmlinuz-$kver" \
    -drive "file=$img,format=raw,if=none,id=root,snapshot=on" -device nvme,drive=root,serial=root \
    -drive "file=$run/xfer.img,format=raw,if=none,id=xfer" -device nvme,drive=xfer,serial=xfer \
    -serial "file:$run/console.log" -serial "file:$run/out.log" \
    -append "console=ttyS0 root=/dev/nvme0n1 rw init=/sbin/vm-init panic=-1 quiet loglevel=4" \
    </dev/null || qrc=$?
  sleep 0.3; kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true
  local rc
  rc=$(debugfs -R 'cat /rc' "$run/xfer.img" 2>/dev/null | tr -dc 0-9)
  if [ -z "$rc" ]; then
    echo "vm.sh: the guest gave no exit status (qemu exit $qrc); its console:" >&2
    tail -40 "$run/console.log" >&2
    rc=125
  fi
  mkdir -p "$dir/out"
  debugfs -R "rdump /out $run" "$run/xfer.img" >/dev/null 2>&1 || true
  [ -d "$run/out" ] && cp -a "$run/out/." "$dir/out/"
  return "$rc"
}

case ${1:-} in
  install) cmd_install ;;
  setup) shift; cmd_setup "${1:?kernel}" ;;
  run) shift; cmd_run "${1:?kernel}" "${2:?directory}" ;;
  kernel) shift; kernel_package "${1:?kernel}" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
