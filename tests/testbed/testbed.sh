#!/bin/bash
# A real systemd (PID 1 of a systemd-nspawn container) for the end-to-end tests, on a host whose
# own PID 1 need not be systemd. The container's units live in cgroups that the host can see, so
# the profiler runs on the host and attaches to them exactly as it would on a production server.
#
# usage: testbed.sh setup | up | exec CMD... | cgroup UNIT | down
# env:   PROFILER_CACHE (default /var/cache/profiler-build)  TB_NAME (default pftb)
#        TB_RELEASE: the Debian release booted, bookworm (systemd 252, the default) or trixie (257)
set -euo pipefail

CACHE=${PROFILER_CACHE:-/var/cache/profiler-build}
TB=$CACHE/testbed
NAME=${TB_NAME:-pftb}
RELEASE=${TB_RELEASE:-bookworm}
case $RELEASE in bookworm|trixie) ;; *) echo "TB_RELEASE=$RELEASE: expected bookworm or trixie" >&2; exit 2 ;; esac
# Bump ROOTFS_REV whenever PACKAGES changes, so a stale cached tarball is not reused.
ROOTFS_REV=1
PACKAGES=systemd,systemd-sysv,dbus,nginx,curl,redis-server,redis-tools,python3,iproute2,procps
TARBALL=$TB/rootfs-$RELEASE-r$ROOTFS_REV.tar.zst
ROOT=$TB/$NAME.root
STATE=$TB/$NAME
CG2_ROOT=/sys/fs/cgroup/unified
[ -f /sys/fs/cgroup/cgroup.controllers ] && CG2_ROOT=/sys/fs/cgroup
CG2=$CG2_ROOT/$NAME
CG1=/sys/fs/cgroup/systemd/$NAME

need_tools() {
  command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null \
    && command -v zstd >/dev/null && return
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq systemd-container debootstrap zstd
}

leader() { cat "$STATE.leader"; }

# Debian's mirror as this host's own apt sources name it (deb822 or one-line format): the
# repository never names one.
debian_mirror() {
  local m
  m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 || true)
  [ -n "$m" ] || { echo "no Debian mirror in this host's apt sources (/etc/apt/sources.list*)" >&2; return 1; }
  echo "$m"
}

case "${1:-}" in
setup)  # once per machine and release: ~80 s to build the rootfs, then cached as a tarball
  need_tools
  mkdir -p "$TB"
  if [ ! -f "$TARBALL" ]; then
    build=$TB/build.$$
    rm -rf "$build"
    mirror=$(debian_mirror)
    debootstrap --variant=minbase --include=$PACKAGES "$RELEASE" "$build" "$mirror" >"$TB/debootstrap-$RELEASE.log" 2>&1 \
      || { tail -20 "$TB/debootstrap-$RELEASE.log" >&2; exit 1; }
    rm -rf "$build"/var/cache/apt/archives/*.deb "$build"/var/lib/apt/lists/*
    echo testbed >"$build/etc/hostname"
    # Daemons start only when a test asks for them.
    rm -f "$build"/etc/systemd/system/multi-user.target.wants/{nginx,redis-server}.service
    tar -C "$build" --zstd -cpf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$build"
  fi ;;
up)     # a fresh container from the cached rootfs, booted to multi-user
  [ -f "$TARBALL" ] || "$0" setup
  "$0" down >/dev/null 2>&1 || true
  rm -rf "$ROOT"; mkdir -p "$ROOT" "$CG2" "$CG1"
  tar -C "$ROOT" --zstd -xpf "$TARBALL"
  # nspawn runs from its own cgroup so the container's tree is a subtree the host can address.
  # UNIFIED_HIERARCHY: DeviceAllow/IPAddressDeny are enforced only on cgroup2;
  # --system-call-filter=bpf: systemd inside must load its own BPF programs.
  setsid sh -c 'echo $$ > "$0/cgroup.procs"; echo $$ > "$1/cgroup.procs"; shift 1
     exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn "$@"' "$CG2" "$CG1" \
     -D "$ROOT" -M "$NAME" -b --register=no --keep-unit --private-network --console=passive \
     --system-call-filter=bpf >"$STATE.log" 2>&1 </dev/null &
  # Not NAME.nspawn: systemd-nspawn would read a file of that name as the machine's settings.
  echo $! >"$STATE.nspawn-pid"
  L=
  for _ in $(seq 300); do
    L=$(pgrep -P "$(cat "$STATE.nspawn-pid")" -x systemd || true); [ -n "$L" ] && break; sleep 0.1
  done
  [ -n "$L" ] || { cat "$STATE.log" >&2; exit 1; }
  echo "$L" >"$STATE.leader"
  s=unknown
  for _ in $(seq 600); do
    s=$(nsenter -t "$L" -a systemctl is-system-running 2>/dev/null || true)
    case $s in running|degraded) break;; esac; sleep 0.1
  done
  echo "state=$s leader=$L host-cgroup=$CG2/payload" ;;
exec)   # run a command inside the container's namespaces (as root, not under its seccomp)
  shift; exec nsenter -t "$(leader)" -a "$@" ;;
cgroup) # the host path of a unit's cgroup, from systemd's own ControlGroup property
  cg=$(nsenter -t "$(leader)" -a systemctl show -P ControlGroup "$2")
  [ -n "$cg" ] || { echo "unit $2 has no cgroup (not running?)" >&2; exit 1; }
  echo "$CG2/payload$cg" ;;
down)
  L=$(cat "$STATE.leader" 2>/dev/null || true); P=$(cat "$STATE.nspawn-pid" 2>/dev/null || true)
  [ -n "$L" ] && nsenter -t "$L" -a systemctl poweroff 2>/dev/null || true
  for _ in $(seq 100); do [ -n "$P" ] && kill -0 "$P" 2>/dev/null || break; sleep 0.1; done
  [ -n "$P" ] && kill -0 "$P" 2>/dev/null && kill -9 "$P" || true
  for d in "$CG2" "$CG1"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$ROOT"; rm -f "$STATE.leader" "$STATE.nspawn-pid" ;;
*) echo "usage: $0 setup|up|exec CMD...|cgroup UNIT|down" >&2; exit 2 ;;
esac
