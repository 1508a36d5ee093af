#!/bin/bash
# Debian's own kernels in qemu (TCG), for running the root kernel tests on the kernels users
# run. Everything is cached under $PROFILER_CACHE/kernel-vm; Debian's mirror is the one this
# host's apt sources name, used through a private apt configuration (the host's is untouched).
#
# usage: vm.sh install                 qemu (bookworm's 7.2 conflicts with the backports
#                                      qemu-utils these machines carry: take 10.x from backports)
#        vm.sh setup KERNEL [system]   fetch Debian's package of KERNEL and build its disk image:
#                                      a minimal Debian 12 whose PID 1 is tests/vm/vm-init, or
#                                      with `system` the Debian release of that kernel (12 for
#                                      6.1, 13 for 6.12) booting systemd as PID 1, with nginx
#        vm.sh run KERNEL DIR [system] boot KERNEL, copy DIR into the guest (/mnt/xfer), run its
#                                      cmd.sh as root (under systemd: from a unit, once the
#                                      system is up), print its output, copy /mnt/xfer/out back
#                                      to DIR/out, exit with its status
#        vm.sh kernel NAME             the package of kernel NAME (6.1 or 6.12)
# env:   PROFILER_CACHE (default /var/cache/profiler-build)  VM_TIMEOUT (s, default 2400)
set -euo pipefail

TOP=${PROFILER_CACHE:-/var/cache/profiler-build}/kernel-vm
HERE=$(cd "$(dirname "$0")" && pwd)
APT_CONFIG_FILE=$TOP/apt/apt.conf
# Bump ROOT_REV when the guest root's packages change, IMAGE_REV when vm-init or
# vm-run.service (copied into each image) or the disk layout change.
ROOT_REV=1
IMAGE_REV=3
# The root file system is found by the partition's id, not by a device name: NVMe namespaces
# are scanned concurrently on 6.12, so nvme0n1 is not always the first disk. An MBR with this
# disk signature and one partition from 1 MiB: PARTUUID=50524f46-01.
ROOT_PARTUUID=50524f46-01
# What a guest booting systemd has beyond minbase: udev (without it the boot waits for
# devices that never come), D-Bus, and a real daemon driven by its real client.
SYSTEM_PACKAGES=systemd,systemd-sysv,udev,dbus,nginx,curl,iproute2,procps,kmod

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

# The Debian release of a system guest for kernel NAME: the release that ships the kernel.
release_of() { case $1 in 6.1) echo bookworm ;; 6.12) echo trixie ;; *) die "no release for $1" ;; esac; }

# A cached root file system: RELEASE and packages (KIND: tests or system); prints its path.
rootfs() {
  local release=$1 kind=$2 tar mirror packages
  tar=$TOP/rootfs-$release-$kind-r$ROOT_REV.tar.zst
  if [ ! -f "$tar" ]; then
    local d=$TOP/rootfs.$$
    mirror=$(host_uri "$release"); [ -n "$mirror" ] || mirror=$(host_uri bookworm)
    packages=iproute2,procps,kmod,util-linux,python3
    [ "$kind" = system ] && packages=$SYSTEM_PACKAGES
    rm -rf "$d"; mkdir -p "$d"
    debootstrap --variant=minbase --include="$packages" "$release" "$d" "$mirror" \
      >"$TOP/debootstrap-$release-$kind.log" 2>&1 || { tail -20 "$TOP/debootstrap-$release-$kind.log" >&2; exit 1; }
    rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/lib/apt/lists/* "$d"/usr/share/{doc,man,locale}/*
    echo vm >"$d/etc/hostname"; : >"$d/etc/fstab"; mkdir -p "$d/mnt/xfer"
    if [ "$kind" = system ]; then
      # nginx starts when the test asks.
      rm -f "$d"/etc/systemd/system/multi-user.target.wants/nginx.service
      chroot "$d" passwd -d root >/dev/null
    fi
    tar -C "$d" --numeric-owner -cf - . | zstd -q -T2 -o "$tar.tmp" -f && mv "$tar.tmp" "$tar"
    rm -rf "$d"
  fi
  echo "$tar"
}

cmd_setup() {
  local name=$1 kind=${2:-tests} pkg kver img release
  cmd_install
  pkg=$(kernel_package "$name")
  kver=${pkg#linux-image-}
  img=$TOP/images/$kver-$kind-r$ROOT_REV.$IMAGE_REV.img
  release=bookworm; [ "$kind" = system ] && release=$(release_of "$name")
  [ -f "$img" ] && [ -f "$TOP/kernels/x/$kver/boot/vmlinuz-$kver" ] && return
  apt_private
  mkdir -p "$TOP/kernels" "$TOP/images"
  (cd "$TOP/kernels" && { ls "${pkg}"_*.deb >/dev/null 2>&1 || APT_CONFIG=$APT_CONFIG_FILE apt-get download -qq "$pkg" 2>&1 | grep -v unsandboxed || true; })
  local deb; deb=$(ls "$TOP/kernels/${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "could not download $pkg"
  rm -rf "$TOP/kernels/x/$kver"; mkdir -p "$TOP/kernels/x/$kver"
  dpkg-deb -x "$deb" "$TOP/kernels/x/$kver"
  local tar; tar=$(rootfs "$release" "$kind")
  local d=$TOP/images/$kver.d
  rm -rf "$d"; mkdir -p "$d"
  zstd -dc "$tar" | tar -C "$d" --numeric-owner -xf -
  # Debian 12 ships modules in /lib/modules, 13 in /usr/lib/modules.
  local m
  for m in lib/modules usr/lib/modules; do
    [ -d "$TOP/kernels/x/$kver/$m" ] && cp -a "$TOP/kernels/x/$kver/$m/." "$d/usr/lib/modules/"
  done
  chroot "$d" /usr/sbin/depmod "$kver"
  install -m 755 "$HERE/vm-init" "$d/sbin/vm-init"
  if [ "$kind" = system ]; then
    # The test's own unit runs once the system is up.
    install -m 644 "$HERE/vm-run.service" "$d/etc/systemd/system/vm-run.service"
    ln -sf /etc/systemd/system/vm-run.service "$d/etc/systemd/system/multi-user.target.wants/vm-run.service"
  fi
  rm -f "$img.tmp"; truncate -s 2G "$img.tmp"
  # MBR: disk signature at 440, partition 1 (type 0x83, LBA 2048, 4192256 sectors) at 446, 55aa.
  printf '\x46\x4f\x52\x50\x00\x00\x00\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\xf8\x3f\x00' |
    dd of="$img.tmp" bs=1 seek=440 conv=notrunc status=none
  printf '\x55\xaa' | dd of="$img.tmp" bs=1 seek=510 conv=notrunc status=none
  mkfs.ext4 -q -F -L vmroot -E offset=1048576 -d "$d" "$img.tmp" 2047M && mv "$img.tmp" "$img"
  rm -rf "$d"
}

cmd_run() {
  local name=$1 dir=$2 kind=${3:-tests} pkg kver img init=/sbin/vm-init
  pkg=$(kernel_package "$name"); kver=${pkg#linux-image-}
  img=$TOP/images/$kver-$kind-r$ROOT_REV.$IMAGE_REV.img
  [ "$kind" = system ] && init=/lib/systemd/systemd
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
  timeout "${VM_TIMEOUT:-2400}" qemu-system-x86_64 -accel tcg -cpu max -machine q35 \
    -m "${VM_MEM:-1536}" -smp "${VM_CPUS:-2}" -nodefaults -display none -no-reboot \
    -kernel "$TOP/kernels/x/$kver/boot/vmlinuz-$kver" \
    -device nvme,id=nvme0,serial=profiler-vm \
    -drive "file=$img,format=raw,if=none,id=root,snapshot=on" -device nvme-ns,drive=root,bus=nvme0,nsid=1 \
    -drive "file=$run/xfer.img,format=raw,if=none,id=xfer" -device nvme-ns,drive=xfer,bus=nvme0,nsid=2 \
    -serial "file:$run/console.log" -serial "file:$run/out.log" \
    -append "console=ttyS0 root=PARTUUID=$ROOT_PARTUUID rootwait rw init=$init panic=-1 quiet loglevel=4" \
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
  setup) shift; cmd_setup "${1:?kernel}" "${2:-tests}" ;;
  run) shift; cmd_run "${1:?kernel}" "${2:?directory}" "${3:-tests}" ;;
  kernel) shift; kernel_package "${1:?kernel}" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
