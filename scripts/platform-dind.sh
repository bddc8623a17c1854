#!/usr/bin/env bash
# The matrix cell "current engine × cgroup v1" on this host, without touching the host's engine:
# a Docker-in-Docker machine (a container of the project's base image: bookworm with its
# docker.io 20.10 installed, not running; fresh cgroup v1 hierarchies mounted as the project's
# machines mount them) in which `scripts/ensure-docker.sh --suite trixie` installs and starts
# trixie's docker.io 26 — the path a bookworm host takes to get a current engine — and the
# harness's own binary, built here, runs the platform tier's scenarios against that inner
# engine (a netem scenario is refused by the preflight on this kernel, with its reason).
#
#   bash scripts/platform-dind.sh [SCENARIO.toml ...]    # default: the platform tier's four
#   DIND_ENGINE=podman bash scripts/platform-dind.sh     # SUITE's Podman (5.4 for trixie) and
#                                                        # its Docker-compatible API instead
#
# Steps: build the harness; tag the project images the scenarios use (`aftershock images
# build`); start the machine (labelled as a run of this script: aftershock.run/.pid/.host, so
# the host's reaper removes it if this script dies); install and start the inner engine
# (dockerd -D: its log shows the API paths the harness called); `docker save | docker load`
# the images into it; run each scenario inside, holding the host's machine-wide run lock
# (/run/aftershock/run.lock, taken alone: timed runs never overlap on one machine); remove the
# machine and its volume. Everything heavy runs at the lowest CPU and I/O priority.
# Reports land in $OUT/out/<run id>/, the summary in $OUT/tier.txt, the inner engine's log in
# $OUT/dockerd.log. Exit status: 0 when no verdict is FAIL, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
SUITE=${AFTERSHOCK_DOCKER_SUITE:-trixie}
ENGINE=${DIND_ENGINE:-docker}   # or podman: SUITE's Podman through its Docker-compatible API
OUT=${DIND_OUT:-$CARGO_TARGET_DIR/platform-dind-$ENGINE}
mapfile -t SCENARIOS < <(grep -v -e '^#' -e '^$' scripts/platform-scenarios.txt)
[ $# -gt 0 ] && SCENARIOS=("$@")
log() { printf '[platform-dind %s] %s\n' "$(date +%T)" "$*" >&2; }
low() { nice -n 19 ionice -c3 "$@"; }

t0=$SECONDS
low cargo build -q --workspace --bin aftershock
bin=$CARGO_TARGET_DIR/debug/aftershock
for s in "${SCENARIOS[@]}"; do "$bin" validate "$s" >/dev/null; done
mapfile -t names < <(grep -hoE '^(preset|image) = "[a-z-]+"' "${SCENARIOS[@]}" | cut -d'"' -f2 | sort -u)
built=$(low "$bin" images build)
base=$(awk '$1 == "base" {print $2}' <<<"$built")
mapfile -t tags < <(awk -v want=" ${names[*]} " 'index(want, " " $1 " ") {print $2}' <<<"$built")
[ -n "$base" ] && [ ${#tags[@]} -eq ${#names[@]} ] || { log "no tag for the base or every image of ${names[*]}"; exit 2; }

# This run's identity, as the harness labels its own (the reaper removes it when this dies).
run=platform-dind-$(date +%Y%m%dT%H%M%S)-$$
me="$$@$(awk '{sub(/.*\) /, ""); print $20}' /proc/$$/stat)"
labels=(--label "aftershock.run=$run" --label "aftershock.pid=$me" --label "aftershock.host=$(cat /proc/sys/kernel/hostname)" --label "aftershock.scenario=platform-dind")
machine=$run
rm -rf "$OUT"; mkdir -p "$OUT/out"
trap 'docker rm -f "$machine" >/dev/null 2>&1; docker volume rm "$machine-docker" >/dev/null 2>&1' EXIT
docker volume create "${labels[@]}" "$machine-docker" >/dev/null
# What the harness needs of a machine (engine/mod.rs Privileges::docker_in_docker), plus the
# loop devices and FUSE of the power cut as device nodes (every device is allowed already).
store=/var/lib/docker; [ "$ENGINE" = podman ] && store=/var/lib/containers
entry='set -e
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for h in cpu cpuacct cpuset memory devices freezer blkio pids net_cls net_prio perf_event; do
  mkdir -p /sys/fs/cgroup/$h
  mount -t cgroup -o $h cgroup /sys/fs/cgroup/$h 2>/dev/null || rmdir /sys/fs/cgroup/$h
done
mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
[ -e /dev/loop-control ] || mknod /dev/loop-control c 10 237
for i in $(seq 0 63); do [ -e /dev/loop$i ] || mknod /dev/loop$i b 7 $i; done
[ -e /dev/fuse ] || mknod /dev/fuse c 10 229
exec sleep infinity'
low docker run -d --name "$machine" "${labels[@]}" --hostname dind26 \
  --cgroupns private --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
  --tmpfs /run:rw,exec --tmpfs /tmp:rw,exec -v "$machine-docker:$store" \
  -v "$PWD:/src:ro" -v "$bin:/usr/local/bin/aftershock:ro" -v "$OUT/out:/out" \
  --entrypoint /usr/bin/tini "$base" -- sh -c "$entry" >/dev/null
log "machine $machine started from $base; installing $SUITE's $ENGINE"
t1=$SECONDS
if [ "$ENGINE" = podman ]; then
  # Podman from SUITE (with what it needs from there), its Docker-compatible API on the
  # engine socket; the docker CLI (bookworm's, still installed) speaks to it.
  cat >"$OUT/out/podman-up.sh" <<UP
set -e
m=\$(awk '\$1=="deb" && !/security/ {print \$2; exit}' /etc/apt/sources.list)
echo "deb \$m $SUITE main" >/etc/apt/sources.list.d/aftershock-$SUITE.list
printf 'Package: *\\nPin: release n=$SUITE\\nPin-Priority: 100\\n' >/etc/apt/preferences.d/aftershock-$SUITE
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t $SUITE podman crun netavark aardvark-dns nftables catatonit >/dev/null
podman --version
nohup podman system service --time=0 unix:///run/docker.sock >/tmp/dockerd.log 2>&1 &
for i in \$(seq 1 60); do docker version >/dev/null 2>&1 && exit 0; sleep 1; done
echo "podman's service did not answer in 60 s"; tail -20 /tmp/dockerd.log; exit 1
UP
  docker exec "$machine" nice -n 19 bash /out/podman-up.sh 2>&1 | tee "$OUT/ensure-docker.log" >&2
else
  docker exec -e AFTERSHOCK_DOCKER_SUITE="$SUITE" -e DOCKERD_ARGS=-D "$machine" \
    nice -n 19 bash /src/scripts/ensure-docker.sh 2>&1 | tee "$OUT/ensure-docker.log" >&2
fi
docker exec "$machine" docker version --format 'inner engine {{.Server.Version}} API {{.Server.APIVersion}} (min {{.Server.MinAPIVersion}}), containerd {{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}' | tee "$OUT/engine.txt" >&2
docker exec "$machine" docker info --format 'cgroup v{{.CgroupVersion}} driver {{.CgroupDriver}} storage {{.Driver}} kernel {{.KernelVersion}}' | tee -a "$OUT/engine.txt" >&2
log "engine installed and up in $((SECONDS - t1)) s; loading ${tags[*]}"
t1=$SECONDS
low docker save "${tags[@]}" | docker exec -i "$machine" nice -n 19 docker load -q >/dev/null
log "images loaded in $((SECONDS - t1)) s"

# CMD...: run holding the host's run lock alone, naming this script as its holder.
held() {
  local lock=/run/aftershock/run.lock
  [ -d /run/aftershock ] || { "$@"; return; }
  (
    flock -x 9
    printf '{"run":"%s","scenario":"%s","pid":%d,"since":%s}' "$run" "platform-dind: $name" $$ "$(date +%s%N)" >"$lock.holder"
    rc=0; "$@" || rc=$?
    rm -f "$lock.holder"
    exit $rc
  ) 9>>"$lock"
}

: >"$OUT/tier.txt"; : >"$OUT/runs.jsonl"; : >"$OUT/runs.log"
for s in "${SCENARIOS[@]}"; do
  name=$(basename "$s" .toml)
  log "$name (waiting for the host's run lock if another run holds it)"
  rc=0
  held bash -c 'start=$(date +%s.%N); docker exec -e AFTERSHOCK_ROOT=/src -e AFTERSHOCK_OUTPUT=/out -e AFTERSHOCK_READY_SCALE=1 \
      "$0" nice -n 19 aftershock run --json "/src/$1" >"$2/last.json" 2>"$2/last.log"; rc=$?
      echo "wall=$(awk "BEGIN{printf \"%.0f\", $(date +%s.%N) - $start}")s load=$(cut -d" " -f1-3 /proc/loadavg)" >"$2/last.wall"; exit $rc' \
    "$machine" "$s" "$OUT" || rc=$?
  echo "$s rc=$rc $(cat "$OUT/last.wall")" >>"$OUT/tier.txt"
  cat "$OUT/last.log" >>"$OUT/runs.log"; cat "$OUT/last.json" >>"$OUT/runs.jsonl"
  tail -n 3 "$OUT/last.log" >&2
done
docker exec "$machine" sh -c 'cat /tmp/dockerd.log' >"$OUT/dockerd.log" 2>&1 || true
log "the harness's API calls, as the inner engine logged them: $(grep -oE 'Calling [A-Z]+ /[^ "]*' "$OUT/dockerd.log" | awk '{print $3}' | sed -E 's#^(/v[0-9.]+)?/.*#\1#' | sort | uniq -c | tr -s ' \n' ' ')(a blank prefix: unversioned)"
log "cell took $((SECONDS - t0)) s"
cat "$OUT/tier.txt"
python3 scripts/platform-summary.py "$OUT/runs.jsonl" "$OUT/tier.txt" || true
! grep -qE '"verdict": ?"fail"' "$OUT/runs.jsonl"
