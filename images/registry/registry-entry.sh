#!/bin/sh
# exec docker-registry as PID 1.
# Config: first argument (CMD), else $DOCKER_REGISTRY_CONFIG, else the shipped file.
# (The variable is deliberately not named REGISTRY_*: the registry reads REGISTRY_*
# variables as overrides of configuration fields, e.g. REGISTRY_HTTP_ADDR.)
set -eu
CONFIG="${1:-${DOCKER_REGISTRY_CONFIG:-/etc/aftershock/registry/config.yml}}"
[ -r "$CONFIG" ] || { echo "registry-entry: config $CONFIG not readable" >&2; exit 64; }
mkdir -p /var/lib/docker-registry
exec /usr/bin/docker-registry serve "$CONFIG"
