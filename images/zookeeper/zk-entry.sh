#!/bin/sh
# Write zoo.cfg from env, write myid if missing, then exec the JVM as PID 1.
#   ZK_MYID       this server's id, 1..n (default 1)
#   ZK_SERVERS    comma-separated host names in myid order (zk1,zk2,zk3);
#                 empty = standalone server
#   ZK_TICK_MS    tickTime in ms (default 500)
#   ZK_DATA_DIR   dataDir (default /var/lib/zookeeper, on the container's own fs)
#   ZK_JAVA_OPTS  JVM options (default: small heap, serial GC)
#   ZK_LOG_LEVEL  log4j level (default INFO)
#   ZK_CFG_EXTRA  extra zoo.cfg lines, appended verbatim
set -eu

ZK_MYID="${ZK_MYID:-1}"
ZK_SERVERS="${ZK_SERVERS:-}"
ZK_TICK_MS="${ZK_TICK_MS:-500}"
ZK_DATA_DIR="${ZK_DATA_DIR:-/var/lib/zookeeper}"
ZK_JAVA_OPTS="${ZK_JAVA_OPTS:--Xms32m -Xmx256m -XX:+UseSerialGC}"
ZK_LOG_LEVEL="${ZK_LOG_LEVEL:-INFO}"
ZK_CFG_EXTRA="${ZK_CFG_EXTRA:-}"
CONF_DIR=/etc/aftershock/zookeeper
CFG="$CONF_DIR/zoo.cfg"

die() { echo "zk-entry: $*" >&2; exit 64; }

case "$ZK_MYID" in ''|*[!0-9]*) die "ZK_MYID must be a positive integer, got '$ZK_MYID'" ;; esac
[ "$ZK_MYID" -ge 1 ] || die "ZK_MYID must be >= 1"
case "$ZK_TICK_MS" in ''|*[!0-9]*) die "ZK_TICK_MS must be a positive integer, got '$ZK_TICK_MS'" ;; esac

mkdir -p "$ZK_DATA_DIR" "$CONF_DIR"
{
    echo "tickTime=$ZK_TICK_MS"
    echo "initLimit=20"
    echo "syncLimit=5"
    echo "dataDir=$ZK_DATA_DIR"
    echo "clientPort=2181"
    echo "4lw.commands.whitelist=srvr,ruok,mntr,stat"
    echo "admin.enableServer=false"
    echo "quorumListenOnAllIPs=true"
    if [ -n "$ZK_SERVERS" ]; then
        i=0
        for host in $(echo "$ZK_SERVERS" | tr ',' ' '); do
            i=$((i + 1))
            echo "server.$i=$host:2888:3888"
        done
        [ "$ZK_MYID" -le "$i" ] || die "ZK_MYID=$ZK_MYID but ZK_SERVERS lists only $i servers"
    fi
    [ -z "$ZK_CFG_EXTRA" ] || printf '%s\n' "$ZK_CFG_EXTRA"
} >"$CFG.tmp"
mv "$CFG.tmp" "$CFG"

# myid is written once: a restarted container keeps its identity and its data.
if [ -s "$ZK_DATA_DIR/myid" ]; then
    old="$(cat "$ZK_DATA_DIR/myid")"
    [ "$old" = "$ZK_MYID" ] || die "$ZK_DATA_DIR/myid says $old but ZK_MYID=$ZK_MYID"
else
    echo "$ZK_MYID" >"$ZK_DATA_DIR/myid"
fi

echo "zk-entry: myid=$ZK_MYID servers=${ZK_SERVERS:-<standalone>} tickTime=$ZK_TICK_MS dataDir=$ZK_DATA_DIR" >&2

# Explicit classpath: zookeeper.jar's manifest lists its dependencies; add exactly
# one slf4j binding (log4j 1.2). '/usr/share/java/*' would also load
# log4j-over-slf4j and several other bindings, which slf4j rejects or picks at random.
# Short DNS caches: peers are found by container name and may come back with a new IP.
# shellcheck disable=SC2086
exec java $ZK_JAVA_OPTS \
    -Djava.net.preferIPv4Stack=true \
    -Dsun.net.inetaddr.ttl=5 \
    -Dsun.net.inetaddr.negative.ttl=1 \
    -Dzookeeper.admin.enableServer=false \
    -Dzookeeper.jmx.log4j.disable=true \
    -Dzookeeper.root.logger="$ZK_LOG_LEVEL,CONSOLE" \
    -Dlog4j.configuration="file:$CONF_DIR/log4j.properties" \
    -cp "$CONF_DIR:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$CFG"
