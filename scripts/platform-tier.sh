#!/usr/bin/env bash
# The platform tier (`make test-platforms`): the harness's own binary, built here, runs a chosen
# set of scenarios inside the cgroup v2 VM of scripts/platform-vm.sh (trixie's kernel and
# docker.io 26), and the guest's real cgroup v2 files are captured next to the fixtures they
# are compared with (harness/fixtures/cgroup-v2).
#
#   bash scripts/platform-tier.sh [SCENARIO.toml ...]   # default: $SCENARIOS below
#
# Steps, each skipped when already done: the VM image (platform-vm.sh build, ~5 min), the
# project images the scenarios use (`aftershock images build` here prints their tags; those
# not yet in the guest's engine go there by `docker save` / `docker load`, ~10 min under TCG
# for 800 MB; the saved file is removed), then one boot that runs every scenario and the
# capture. Reports land in $VM_DIR/share/out/<run id>/, the summary in $VM_DIR/share/tier.txt.
# Exit status: 0 when every scenario's verdict is PASS or UNKNOWN (UNKNOWN under emulation is
# the lag named, never a FAIL), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export VM_DIR=${VM_DIR:-$CARGO_TARGET_DIR/platform-vm}
mapfile -t SCENARIOS < <(grep -v -e '^#' -e '^$' scripts/platform-scenarios.txt)
[ $# -gt 0 ] && SCENARIOS=("$@")
READY_SCALE=${READY_SCALE:-5}
log() { printf '[platform-tier %s] %s\n' "$(date +%T)" "$*" >&2; }
low() { nice -n 19 ionice -c3 "$@"; }

t0=$SECONDS
low cargo build -q --workspace --bin aftershock
bin=$CARGO_TARGET_DIR/debug/aftershock
for s in "${SCENARIOS[@]}"; do "$bin" validate "$s" >/dev/null; done
[ -f "$VM_DIR/root.img" ] || bash scripts/platform-vm.sh build

# The images the scenarios name (presets and `image =`), by their tags on this host.
mapfile -t names < <(grep -hoE '^(preset|image) = "[a-z-]+"' "${SCENARIOS[@]}" | cut -d'"' -f2 | sort -u)
mapfile -t tags < <(low "$bin" images build | awk -v want=" ${names[*]} " 'index(want, " " $1 " ") {print $2}')
# (`images build` waits for the machine-wide images lock when another checkout is building.)
[ ${#tags[@]} -eq ${#names[@]} ] || { log "no tag for every image of ${names[*]} (got: ${tags[*]})"; exit 2; }
touch "$VM_DIR/loaded"
missing=()
for t in "${tags[@]}"; do grep -qxF "$t" "$VM_DIR/loaded" || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  bash scripts/platform-vm.sh load "${missing[@]}" >/dev/null
  printf '%s\n' "${missing[@]}" >>"$VM_DIR/loaded"
fi
log "ready in $((SECONDS - t0)) s (images in the guest: ${tags[*]})"

share=$VM_DIR/share
mkdir -p "$share/bin" "$share/out"
cp "$bin" "$share/bin/aftershock"
{
  # Bring-up waits (only they) ×$READY_SCALE under emulation: PostgreSQL took over 90 s to
  # answer in a TCG guest on a loaded host. No expectation's budget is scaled.
  echo "export AFTERSHOCK_ROOT=/src AFTERSHOCK_OUTPUT=/share/out AFTERSHOCK_READY_SCALE=$READY_SCALE"
  echo 'sh /src/scripts/platform-capture.sh /share/capture'
  echo ': >/share/tier.txt'
  for s in "${SCENARIOS[@]}"; do
    echo "t=\$(date +%s.%N); aftershock run --json /src/$s >/share/last.json 2>/share/last.log; rc=\$?"
    echo "d=\$(awk \"BEGIN{printf \\\"%.0f\\\", \$(date +%s.%N) - \$t}\")"
    echo "echo \"$s rc=\$rc wall=\${d}s\" >>/share/tier.txt; cat /share/last.log >>/share/runs.log; cat /share/last.json >>/share/runs.jsonl"
  done
} >"$share/tier.sh"
rm -f "$share/runs.log" "$share/runs.jsonl"
log "boot and run ${#SCENARIOS[@]} scenario(s) in the guest"
bash scripts/platform-vm.sh run 'sh /share/tier.sh' || true
log "tier took $((SECONDS - t0)) s"
cat "$share/tier.txt"
python3 scripts/platform-summary.py "$share/runs.jsonl" "$share/tier.txt"
