#!/bin/sh
# A machine: mounts fresh, writable cgroup v1 hierarchies over the read-only ones the engine
# gives a container (with a private cgroup namespace they show only this machine's subtree),
# then execs machine-init, which runs dockerd and the units.
set -eu
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for h in cpu cpuacct cpuset memory devices freezer blkio pids net_cls net_prio perf_event; do
    mkdir -p /sys/fs/cgroup/$h
    mount -t cgroup -o $h cgroup /sys/fs/cgroup/$h 2>/dev/null || rmdir /sys/fs/cgroup/$h
done
mkdir -p /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
exec /usr/local/bin/machine-init "$@"
