#!/usr/bin/env bash
# A cgroup v2 host with a current Docker engine, as a VM on this machine, made from Debian
# packages only (no image downloads): the platform tier (`make test-platforms`) runs the
# harness's own binary inside it.
#
#   bash scripts/platform-vm.sh build            # rootfs (trixie: linux-image-amd64, docker.io,
#                                                # podman) on an ext4 file, kernel + initrd beside it
#   bash scripts/platform-vm.sh run 'COMMAND'    # boot, start dockerd, run COMMAND, power off
#   bash scripts/platform-vm.sh load IMAGE...    # docker save on the host, docker load in the guest
#   bash scripts/platform-vm.sh clean            # remove the image files (the big ones)
#
# The guest: kernel and initrd of trixie's linux-image-amd64 booted directly by qemu, root on
# a virtio disk (ext4 file, made with `mkfs.ext4 -d`, no loop mount), `init=/vm-init` (below):
# proc/sys/dev, tmpfs /run and /tmp, cgroup2 alone on /sys/fs/cgroup, dockerd started, then
# COMMAND from a 9p share, its output and exit status written back to the share, power off.
# Two 9p shares: `share` ($VM_DIR/share, read-write: the command, its output, saved images,
# the harness's binary) and `src` (this checkout, read-only: AFTERSHOCK_ROOT).
#
# Acceleration: KVM is tried once per image (a boot that prints the init's first line within
# $KVM_PROBE_S seconds), the outcome kept in $VM_DIR/accel; TCG otherwise. On the machines
# this project runs on, a KVM guest hangs at the kernel's start (no nested SVM): TCG it is.
#
# Everything lives under $VM_DIR (default $CARGO_TARGET_DIR/platform-vm, else
# target/platform-vm). Every wait has a bound; qemu runs at the lowest CPU and I/O priority.
# Needs root (debootstrap, chroot). The Debian mirror is $DEBIAN_MIRROR, else the host's apt
# configuration's (read at run time; no mirror is written here).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
VM_DIR=${VM_DIR:-${CARGO_TARGET_DIR:-$SRC/target}/platform-vm}
SUITE=${VM_SUITE:-trixie}
PODMAN=podman,aardvark-dns,catatonit,
# bookworm's podman 4.3 needs the virtual container-network-stack, which debootstrap does not
# choose: Docker alone there.
[ "$SUITE" = bookworm ] && PODMAN=
PACKAGES=${VM_PACKAGES:-docker.io,${PODMAN}nftables,curl,linux-image-amd64,initramfs-tools,kmod,iproute2,iptables,procps,e2fsprogs,util-linux,ca-certificates}
DISK_GB=${VM_DISK_GB:-12}
MEM_MB=${VM_MEM_MB:-4096}
CPUS=${VM_CPUS:-2}
KVM_PROBE_S=${KVM_PROBE_S:-60}
RUN_TIMEOUT_S=${VM_RUN_TIMEOUT_S:-3600}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[platform-vm %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[platform-vm] ERROR: %s\n' "$*" >&2; exit 1; }
low() { nice -n 19 ionice -c3 "$@"; }

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m=$(awk 'tolower($1)=="uris:" && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb" && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || die "no Debian mirror in the host's apt configuration: set DEBIAN_MIRROR"
  echo "$m"
}

# The image's init (PID 1): mounts what the 9p share needs and runs the share's init.sh
# (written by every `run`, so changing it needs no new image); powers off if that fails.
vm_stub() {
  cat <<'INIT'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
modprobe 9pnet_virtio; modprobe 9p; mkdir -p /share
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share && [ -f /share/init.sh ]; then
  exec sh /share/init.sh
fi
echo "vm-init: no 9p share with init.sh" >/dev/console
echo o >/proc/sysrq-trigger; sleep 30
INIT
}

# The guest's init proper (from the share): bounded waits, output on the serial console,
# always powers off.
vm_init() {
  cat <<'INIT'
#!/bin/sh
export PATH=/share/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vm-init: $*" >/dev/console; }
off() { sync; cd /; umount /src 2>/dev/null; umount /share 2>/dev/null; echo o >/proc/sysrq-trigger; sleep 30; }
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /tmp
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
say "up: kernel $(uname -r), $(stat -fc %T /sys/fs/cgroup) with: $(cat /sys/fs/cgroup/cgroup.controllers)"
hostname platform-vm; ip link set lo up
for m in 9p 9pnet_virtio loop overlay sch_netem br_netfilter; do modprobe "$m" || say "no module $m"; done
mkdir -p /src
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro src /src || say "no 9p src"
echo "$(date +%s)" >/share/booted
t0=$(date +%s)
engine=docker; [ -f /share/engine ] && engine=$(cat /share/engine)
if [ "$engine" = podman ]; then
  podman system service --time=0 unix:///run/docker.sock >/var/log/engine.log 2>&1 &
else
  dockerd >/var/log/engine.log 2>&1 &
fi
i=0
until curl -sf --unix-socket /run/docker.sock http://engine/_ping >/dev/null 2>&1; do
  i=$((i+1)); [ $i -le 900 ] || { say "engine did not answer in 900 s"; tail -30 /var/log/engine.log >/dev/console; off; }
  sleep 1
done
say "engine $engine up in $(( $(date +%s) - t0 )) s"
cd /share
# A bare init's open-files limit is 1024 (hard 4096); a host's services get far more (systemd:
# 524288): the load probe's sockets in flight need it.
ulimit -n 1048576 2>/dev/null || say "open files stay at $(ulimit -n)"
sh /share/cmd >/share/out.log 2>&1 </dev/null
echo $? >/share/rc
say "command exited $(cat /share/rc)"
cp /var/log/engine.log /share/engine.log 2>/dev/null
off
INIT
}

build() {
  [ "$(id -u)" -eq 0 ] || die "build needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  command -v qemu-system-x86_64 >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  mkdir -p "$VM_DIR"
  local root=$VM_DIR/rootfs t0=$SECONDS
  rm -rf "$root" "$VM_DIR/root.img" "$VM_DIR/accel"
  log "debootstrap $SUITE ($PACKAGES) from $(mirror) into $root"
  low debootstrap --variant=minbase --keyring="$KEYRING" --include="$PACKAGES" \
    "$SUITE" "$root" "$(mirror)" >"$VM_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$VM_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $VM_DIR/debootstrap.log)"; }
  log "debootstrap took $((SECONDS - t0)) s"
  local kernel initrd
  kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
  initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1) \
    || die "no initrd in $root/boot (update-initramfs did not run?)"
  cp "$kernel" "$VM_DIR/vmlinuz" && cp "$initrd" "$VM_DIR/initrd.img"
  vm_stub >"$root/vm-init" && chmod 755 "$root/vm-init"
  printf '127.0.0.1 localhost platform-vm\n::1 localhost\n' >"$root/etc/hosts"
  echo platform-vm >"$root/etc/hostname"
  : >"$root/etc/resolv.conf"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  log "rootfs $(du -sh "$root" | cut -f1); ext4 file of ${DISK_GB} GB (sparse)"
  low mkfs.ext4 -q -F -L platform-vm -d "$root" "$VM_DIR/root.img" "${DISK_GB}G"
  rm -rf "$root"
  log "built in $((SECONDS - t0)) s: $VM_DIR/{vmlinuz,initrd.img,root.img} ($(du -sh "$VM_DIR/root.img" | cut -f1) used)"
}

qemu() { # ACCEL TIMEOUT_S CONSOLE_LOG
  local accel=$1 limit=$2 console=$3
  local cpu=max; [ "$accel" = kvm ] && cpu=host
  low timeout --kill-after=10 "$limit" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" \
    -m "$MEM_MB" -smp "$CPUS" -nographic -no-reboot -nic none \
    -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 init=/vm-init panic=-1 quiet" \
    -drive "file=$VM_DIR/root.img,format=raw,if=virtio" \
    -virtfs "local,path=$VM_DIR/share,mount_tag=share,security_model=none" \
    -virtfs "local,path=$SRC,mount_tag=src,security_model=none,readonly=on" \
    </dev/null >"$console" 2>&1
}

# KVM once per image: a boot whose init says "up" within KVM_PROBE_S counts; else TCG.
accel() {
  if [ -f "$VM_DIR/accel" ]; then cat "$VM_DIR/accel"; return; fi
  local a=tcg
  if [ -w /dev/kvm ] && [ "${VM_TRY_KVM:-1}" = 1 ]; then
    log "trying KVM (-cpu host; at most ${KVM_PROBE_S} s to the init's first line)"
    printf 'true\n' >"$VM_DIR/share/cmd"
    qemu kvm "$KVM_PROBE_S" "$VM_DIR/kvm-probe.log" || true
    if grep -q 'vm-init: up' "$VM_DIR/kvm-probe.log"; then a=kvm; else
      log "KVM: no boot in ${KVM_PROBE_S} s ($(grep -m1 -iE 'error|fail' "$VM_DIR/kvm-probe.log" || echo 'hangs at the kernel start')): TCG"
    fi
  fi
  echo "$a" >"$VM_DIR/accel"; echo "$a"
}

run() {
  [ -f "$VM_DIR/root.img" ] || die "no VM image in $VM_DIR: run '$0 build' first"
  mkdir -p "$VM_DIR/share"
  rm -f "$VM_DIR/share/rc" "$VM_DIR/share/out.log" "$VM_DIR/share/booted"
  vm_init >"$VM_DIR/share/init.sh"
  # trixie's docker.io has no CLI (docker-cli is not in trixie): the host's, if any, for
  # `docker load` and by-hand use; the harness itself speaks the Engine API.
  mkdir -p "$VM_DIR/share/bin"
  if command -v docker >/dev/null; then cp "$(command -v docker)" "$VM_DIR/share/bin/docker"; fi
  local a; a=$(accel)
  printf '%s\n' "$1" >"$VM_DIR/share/cmd"
  local t0=$SECONDS
  log "boot ($a, ${CPUS} vCPUs, ${MEM_MB} MB), then: $1"
  qemu "$a" "$RUN_TIMEOUT_S" "$VM_DIR/console.log" || true
  grep 'vm-init:' "$VM_DIR/console.log" >&2 || true
  log "VM ran $((SECONDS - t0)) s"
  [ -f "$VM_DIR/share/out.log" ] && cat "$VM_DIR/share/out.log"
  [ -f "$VM_DIR/share/rc" ] || die "the command did not finish within ${RUN_TIMEOUT_S} s (console: $VM_DIR/console.log)"
  return "$(cat "$VM_DIR/share/rc")"
}

load() {
  mkdir -p "$VM_DIR/share"
  local t0=$SECONDS
  log "docker save $* (host)"
  low docker save -o "$VM_DIR/share/images.tar" "$@"
  log "saved $(du -sh "$VM_DIR/share/images.tar" | cut -f1) in $((SECONDS - t0)) s; docker load in the guest"
  local rc=0
  run 'docker load -i /share/images.tar && docker images' || rc=$?
  rm -f "$VM_DIR/share/images.tar"
  return $rc
}

case "${1:-}" in
  build) build ;;
  run) shift; [ $# -ge 1 ] || die "usage: $0 run 'COMMAND'"; run "$*" ;;
  load) shift; [ $# -ge 1 ] || die "usage: $0 load IMAGE..."; load "$@" ;;
  clean) rm -rf "$VM_DIR/root.img" "$VM_DIR/rootfs" "$VM_DIR/share" "$VM_DIR/accel"; log "removed $VM_DIR's image files" ;;
  *) die "usage: $0 build | run 'COMMAND' | load IMAGE... | clean" ;;
esac
