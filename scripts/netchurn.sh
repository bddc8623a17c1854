#!/usr/bin/env bash
# Reproduces moby#42119 on this engine: per cycle, a labelled network, N memcached containers
# started on it at once, removed, the network removed. Counts the cycles whose network the
# engine refuses ("has active endpoints") at once, after a 10 s poll, and for good.
# usage: scripts/netchurn.sh VARIANT CYCLES [N]
#   VARIANT: base | stop | disconnect | lim8 | lim16 | startlim8 | rmlim8
#   ROUNDS=K (env): before removal, K rounds of killing all at once and starting all at once
# Everything carries aftershock.run=<id> (no host label: other runs' reapers leave it alone;
# `aftershock clean` finds it). A network that stays is listed at the end.
set -u
VARIANT=${1:?variant}; CYCLES=${2:?cycles}; N=${3:-50}
RUN="netchurn-$(date +%H%M%S)-$$"
IMG=$(docker images aftershock/memcached --format '{{.Repository}}:{{.Tag}}' | head -1)
START_P=$N; RM_P=32
case $VARIANT in
  lim8) START_P=8; RM_P=8 ;; lim16) START_P=16; RM_P=16 ;;
  startlim8) START_P=8 ;; rmlim8) RM_P=8 ;;
esac
cleanup() {
  docker ps -aq --filter label=aftershock.run=$RUN | xargs -r docker rm -f >/dev/null 2>&1
  docker network ls -q --filter label=aftershock.run=$RUN | xargs -r docker network rm >/dev/null 2>&1
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT
ms() { date +%s%3N; }
first=0; later=0; never=0; up_total=0; down_total=0
for c in $(seq 1 "$CYCLES"); do
  net="$RUN-$c"
  sub=""
  for a in $(seq 0 40); do
    o=$(( ( $$ + c * 7 + a * 37 ) % 250 + 2 ))
    docker network create --label aftershock.run=$RUN --subnet 172.27.$o.0/24 "$net" >/dev/null 2>&1 && { sub=172.27.$o; break; }
  done
  [ -z "$sub" ] && { echo "cycle $c: no network"; break; }
  t0=$(ms)
  seq 1 "$N" | xargs -P "$START_P" -I{} docker run -d --label aftershock.run=$RUN --name "$net-{}" \
      --network "$net" --ip "$sub.1{}" "$IMG" -m 8 >/dev/null 2>&1 || true
  t1=$(ms)
  ids=$(docker ps -aq --filter label=aftershock.run=$RUN --filter network=$net)
  count=$(echo "$ids" | grep -c . || true)
  for _ in $(seq 1 "${ROUNDS:-0}"); do
    echo "$ids" | xargs -r -P "$N" -n1 docker kill >/dev/null 2>&1
    echo "$ids" | xargs -r -P "$START_P" -n1 docker start >/dev/null 2>&1
  done
  case $VARIANT in
    stop) echo "$ids" | xargs -r -P "$RM_P" -n1 docker stop -t 1 >/dev/null 2>&1
          echo "$ids" | xargs -r -P "$RM_P" -n1 docker rm >/dev/null 2>&1 ;;
    disconnect) echo "$ids" | xargs -r -P "$RM_P" -I{} docker network disconnect -f "$net" {} >/dev/null 2>&1
          echo "$ids" | xargs -r -P "$RM_P" -n1 docker rm -f >/dev/null 2>&1 ;;
    *) echo "$ids" | xargs -r -P "$RM_P" -n1 docker rm -f >/dev/null 2>&1 ;;
  esac
  t2=$(ms)
  up_total=$((up_total + t1 - t0)); down_total=$((down_total + t2 - t1))
  if docker network rm "$net" >/dev/null 2>&1; then first=$((first+1)); r=first
  else
    r=never; dl=$(( $(ms) + 10000 ))
    while [ "$(ms)" -lt "$dl" ]; do
      if docker network rm "$net" >/dev/null 2>&1; then r=later; break; fi
      sleep 0.2   # the poll's interval, not a readiness stand-in
    done
    [ $r = later ] && later=$((later+1)) || never=$((never+1))
  fi
  echo "cycle $c: $count containers, up $((t1-t0)) ms, down $((t2-t1)) ms, network: $r"
done
echo "RESULT variant=$VARIANT rounds=${ROUNDS:-0} n=$N cycles=$c removed_first=$first removed_after_poll=$later stuck=$never mean_up_ms=$((up_total / c)) mean_down_ms=$((down_total / c))"
docker network ls --filter label=aftershock.run=$RUN --format 'stuck network: {{.ID}} {{.Name}}'
