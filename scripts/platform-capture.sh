#!/bin/sh
# Inside the platform VM (scripts/platform-tier.sh runs it): captures the real cgroup v2 files
# the fixtures of harness/fixtures/cgroup-v2 stand for, into OUT_DIR, laid out as the fixture
# is (sys/fs/cgroup/..., proc/<pid>/cgroup), plus the engine's view (docker info).
#   - a container (cgroupfs driver: this guest has no systemd) paused: cgroup.freeze and
#     cgroup.events (frozen 1) of its cgroup, its main process's /proc/PID/cgroup;
#   - a container with a 64 MiB limit in which an exec'd process outgrows it (the kernel kills
#     it, the container lives): memory.events with oom_kill 1.
# Every wait is bounded; the containers are removed on the way out.
set -u
OUT=${1:?usage: platform-capture.sh OUT_DIR}
rm -rf "$OUT"; mkdir -p "$OUT/sys/fs/cgroup" "$OUT/proc"
IMG=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^aftershock/' | head -1)
trap 'docker rm -f v2-frozen v2-oom >/dev/null 2>&1' EXIT
cp /sys/fs/cgroup/cgroup.controllers "$OUT/sys/fs/cgroup/"
docker info --format '{{.ServerVersion}} cgroup v{{.CgroupVersion}} driver {{.CgroupDriver}} storage {{.Driver}} kernel {{.KernelVersion}}' >"$OUT/engine.txt" 2>&1
keep() { # CONTAINER: its cgroup's files and its main process's /proc/PID/cgroup
  id=$(docker inspect -f '{{.Id}}' "$1"); pid=$(docker inspect -f '{{.State.Pid}}' "$1")
  path=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
  mkdir -p "$OUT/sys/fs/cgroup$path" "$OUT/proc/$pid"
  cp "/proc/$pid/cgroup" "$OUT/proc/$pid/cgroup"
  for f in cgroup.freeze cgroup.events memory.events memory.max memory.swap.max; do
    cp "/sys/fs/cgroup$path/$f" "$OUT/sys/fs/cgroup$path/" 2>/dev/null
  done
  echo "$1 id=$id pid=$pid cgroup=$path" >>"$OUT/containers.txt"
}
docker run -d --name v2-frozen --entrypoint sh "$IMG" -c 'sleep 600' >/dev/null
docker pause v2-frozen >/dev/null
keep v2-frozen
docker run -d --name v2-oom --memory 64m --memory-swap 64m --entrypoint sh "$IMG" -c 'sleep 600' >/dev/null
# 200 MB in one shell variable: the exec'd shell is the cgroup's biggest process.
timeout 120 docker exec v2-oom sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}' \
  >"$OUT/oom-exec.txt" 2>&1
echo "exit $?" >>"$OUT/oom-exec.txt"
keep v2-oom
docker inspect -f 'OOMKilled={{.State.OOMKilled}} running={{.State.Running}}' v2-oom >>"$OUT/oom-exec.txt"
# The root's subtree_control once the engine has enabled controllers for its containers.
cp /sys/fs/cgroup/cgroup.subtree_control "$OUT/sys/fs/cgroup/"
echo "captured into $OUT"
