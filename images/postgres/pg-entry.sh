#!/bin/sh
# Initialise PGDATA if it holds no cluster, then exec postgres as PID 1 (user postgres).
#   PGDATA       data directory (default /var/lib/postgresql/data). To put it on its
#                own mount, mount at /var/lib/postgresql and keep the default: initdb
#                refuses a mount point itself (lost+found).
#   PG_OPTS      extra server options, word-split, e.g. "-c fsync=off"
#   PG_DATABASE  database created at initialisation (default aftershock)
# Every host may connect as any user without a password (pg_hba: trust).
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PG_OPTS="${PG_OPTS:-}"
PG_DATABASE="${PG_DATABASE:-aftershock}"
BIN=/usr/lib/postgresql/15/bin
export PGDATA

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres /run/postgresql
# A fresh volume or mount arrives owned by root.
[ "$(stat -c %U "$PGDATA")" = postgres ] || chown postgres:postgres "$PGDATA"
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "$(ls -A "$PGDATA")" ]; then
        echo "pg-entry: $PGDATA is not empty and holds no cluster (no PG_VERSION); refusing to initdb" >&2
        ls -la "$PGDATA" >&2
        exit 64
    fi
    echo "pg-entry: initdb $PGDATA" >&2
    as_postgres "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDATA/postgresql.conf" <<CONF

# aftershock
listen_addresses = '*'
jit = off
CONF
    cat >>"$PGDATA/pg_hba.conf" <<HBA

# aftershock: every host, every user, no password
host all all 0.0.0.0/0 trust
host all all ::/0 trust
HBA
    echo "CREATE DATABASE \"$PG_DATABASE\";" \
        | as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
    echo "pg-entry: created database $PG_DATABASE" >&2
fi

# A clock fault preloads libfaketime (0.9.10), whose first process here (this root shell, PID
# 1) made a semaphore only root may open and named it in FAKETIME_SHARED: postgres, exec'd as
# PID 1 under another user, would find it, fail to open it, fail to make its own (the same
# name, by PID) and exit. Without the variable it goes on without the shared memory, which
# only libfaketime's own `faketime` wrapper uses.
unset FAKETIME_SHARED
# shellcheck disable=SC2086
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA" $PG_OPTS
