#!/bin/sh
# redis-entry.sh [PRIMARY[,REPLICA...] [REDIS-SERVER OPTIONS...]]
# Write redis.conf and sentinel.conf, start the sentinel in the background, then exec
# redis-server as PID 1 with the options given after PRIMARY (e.g. --min-replicas-to-write 1).
#   PRIMARY           the host name of the primary at start (default: this replica, a lone
#                     primary); every other replica starts as its replica. Arguments, not env:
#                     reports hide the values of a scenario's env, and these are names to show.
#   ,REPLICA...       the other members' host names (e.g. redis1,redis2,redis3): the sentinel
#                     starts knowing them (`known-replica`) instead of learning them from the
#                     primary's INFO, sent every 10 s (ready in ~2 s instead of ~10, 2026-12-03)
#   REDIS_SELF        this replica's host name on the run's network (default: the hostname,
#                     which the harness sets to the replica's name)
#   REDIS_SENTINEL    "yes" (default): run a sentinel beside the server, monitoring REDIS_PRIMARY
#   REDIS_QUORUM      sentinels that must agree the primary is down (default 2)
#   REDIS_DOWN_AFTER_MS  sentinel down-after-milliseconds (default 2000)
#   REDIS_FAILOVER_TIMEOUT_MS  sentinel failover-timeout (default 10000)
set -eu

REDIS_SELF="${REDIS_SELF:-$(hostname)}"
MEMBERS="${1:-$REDIS_SELF}"
REDIS_PRIMARY="${MEMBERS%%,*}"
[ "$#" -eq 0 ] || shift
REDIS_SENTINEL="${REDIS_SENTINEL:-yes}"
REDIS_QUORUM="${REDIS_QUORUM:-2}"
REDIS_DOWN_AFTER_MS="${REDIS_DOWN_AFTER_MS:-2000}"
REDIS_FAILOVER_TIMEOUT_MS="${REDIS_FAILOVER_TIMEOUT_MS:-10000}"
CONF=/etc/aftershock/redis

die() { echo "redis-entry: $*" >&2; exit 64; }
for v in "$REDIS_QUORUM" "$REDIS_DOWN_AFTER_MS" "$REDIS_FAILOVER_TIMEOUT_MS"; do
    case "$v" in ''|*[!0-9]*) die "quorum and timeouts must be whole numbers, got '$v'" ;; esac
done

mkdir -p "$CONF" /var/lib/redis
{
    echo "bind 0.0.0.0"
    echo "protected-mode no"
    echo "port 6379"
    echo "dir /var/lib/redis"
    echo "appendonly no"
    echo "save \"\""
    echo "repl-diskless-sync-delay 0"
    echo "replica-announce-ip $REDIS_SELF"
    if [ "$REDIS_PRIMARY" != "$REDIS_SELF" ]; then
        echo "replicaof $REDIS_PRIMARY 6379"
    fi
} >"$CONF/redis.conf"

if [ "$REDIS_SENTINEL" = yes ]; then
    # The sentinel rewrites its file (the epochs, the primary it follows): a fresh one each start.
    {
        echo "port 26379"
        echo "bind 0.0.0.0"
        echo "protected-mode no"
        echo "dir /var/lib/redis"
        echo "sentinel resolve-hostnames yes"
        echo "sentinel announce-hostnames yes"
        echo "sentinel announce-ip $REDIS_SELF"
        echo "sentinel monitor main $REDIS_PRIMARY 6379 $REDIS_QUORUM"
        echo "sentinel down-after-milliseconds main $REDIS_DOWN_AFTER_MS"
        echo "sentinel failover-timeout main $REDIS_FAILOVER_TIMEOUT_MS"
        echo "sentinel parallel-syncs main 1"
        for r in $(echo "$MEMBERS" | tr ',' ' '); do
            [ "$r" = "$REDIS_PRIMARY" ] || echo "sentinel known-replica main $r 6379"
        done
    } >"$CONF/sentinel.conf"
    redis-server "$CONF/sentinel.conf" --sentinel &
fi

echo "redis-entry: self=$REDIS_SELF primary=$REDIS_PRIMARY sentinel=$REDIS_SENTINEL options: $*" >&2
exec redis-server "$CONF/redis.conf" "$@"
