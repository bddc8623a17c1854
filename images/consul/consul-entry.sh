#!/bin/sh
# exec consul as PID 1 with the container's CMD as arguments.
# `agent ...` additionally loads /etc/aftershock/consul.json (no update check,
# so the agent never calls out of the test network); CLI flags still win.
set -eu
if [ "${1:-}" = agent ]; then
    shift
    exec /usr/bin/consul agent -config-file=/etc/aftershock/consul.json "$@"
fi
exec /usr/bin/consul "$@"
