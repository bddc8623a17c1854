#!/usr/bin/env bash
# Makes sure a Docker engine answers. On a fresh Debian machine (as root) it installs Debian's
# docker.io and starts dockerd in the background; elsewhere it says what to do.
#
# A current engine on a bookworm host, when asked: AFTERSHOCK_DOCKER_SUITE=trixie (or
# `--suite trixie`) installs docker.io, docker-cli and containerd from that Debian suite
# (26.1 and 1.7 for trixie; their dependencies stay bookworm's where bookworm's satisfy them:
# libc and runc do), from the same mirror as the host's apt configuration (read at run time),
# with the suite pinned low (priority 100) so nothing else is taken from it. An exact version
# of docker.io: AFTERSHOCK_DOCKER_VERSION (an apt version, e.g. `26.1.5+dfsg1-9+deb13u1+b1`).
# An engine that already answers is never stopped, replaced or reconfigured: if it is not the
# one asked for, this says so and exits 1 (stop it yourself, or use a machine of its own).
# DOCKERD_ARGS: extra arguments for the dockerd it starts (e.g. `-D` to log every request).
set -euo pipefail
SUITE=${AFTERSHOCK_DOCKER_SUITE:-}
WANT=${AFTERSHOCK_DOCKER_VERSION:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=${2:?--suite needs a Debian suite, e.g. trixie}; shift 2 ;;
    --version) WANT=${2:?--version needs an apt version of docker.io}; shift 2 ;;
    *) echo "ensure-docker: unknown argument $1 (usage: ensure-docker.sh [--suite SUITE] [--version APT_VERSION])" >&2; exit 2 ;;
  esac
done
say() { echo "ensure-docker: $*" >&2; }

# The engine that answers, as `26.1.5` (empty: none answers).
answering() { docker version --format '{{.Server.Version}}' 2>/dev/null || true; }

# Adds SUITE's packages (pinned low) from the host's mirror; prints the candidate docker.io.
add_suite() {
  local mirror
  mirror=$(awk 'tolower($1)=="uris:" && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { say "no Debian mirror in this host's apt configuration"; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$SUITE" >"/etc/apt/sources.list.d/aftershock-$SUITE.sources"
  printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$SUITE" >"/etc/apt/preferences.d/aftershock-$SUITE"
  apt-get update -qq >&2
}

# The newest docker.io of SUITE (an apt version).
candidate() { apt-cache madison docker.io | awk -F'|' -v s=" $SUITE/" 'index($3, s) {gsub(/ /, "", $2); print $2; exit}'; }

# The upstream part of an apt version (`26.1.5+dfsg1-9` -> `26.1.5`).
upstream() { sed -E 's/^[0-9]+://; s/[+~-].*//' <<<"$1"; }

install_suite() {
  add_suite
  local version=$WANT
  [ -n "$version" ] || version=$(candidate)
  [ -n "$version" ] || { say "$SUITE has no docker.io on this mirror"; exit 1; }
  local now
  now=$(dpkg-query -W -f '${Version}' docker.io 2>/dev/null || true)
  if [ "$now" = "$version" ]; then return; fi
  say "installing docker.io $version, docker-cli and containerd from $SUITE (was: ${now:-none})"
  local cli=docker-cli/$SUITE
  [ -n "$WANT" ] && cli="docker-cli=$WANT"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "docker.io=$version" "$cli" "containerd/$SUITE" >/dev/null
}

if [ -n "$SUITE" ] || [ -n "$WANT" ]; then
  [ -n "$SUITE" ] || { say "AFTERSHOCK_DOCKER_VERSION needs AFTERSHOCK_DOCKER_SUITE (the suite that has it)"; exit 2; }
  running=$(answering)
  if [ -n "$running" ]; then
    # Nothing is changed here, not even apt's sources: the suite's lists are read only if an
    # earlier run of this script added them.
    v=$WANT
    [ -n "$v" ] || [ ! -f "/etc/apt/sources.list.d/aftershock-$SUITE.sources" ] || v=$(candidate)
    if [ -n "$v" ] && [ "$(upstream "$v")" = "$running" ]; then exit 0; fi
    say "an engine already answers (Docker $running), not $SUITE's${v:+ ($(upstream "$v"))}; ensure-docker never stops or replaces a running engine: stop it yourself, or use a machine of its own"
    exit 1
  fi
  [ "$(id -u)" = 0 ] || { say "installing $SUITE's engine needs root"; exit 1; }
  install_suite
  # A package that started its service (systemd) has started the engine: done.
  if [ -n "$(answering)" ]; then say "Docker $(answering) answers"; exit 0; fi
else
  if docker info >/dev/null 2>&1; then exit 0; fi
  if [ "$(id -u)" != 0 ]; then
    say "no Docker engine answers and this is not root: start one (e.g. 'sudo systemctl start docker')"
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
fi
say "starting dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) (log: /tmp/dockerd.log)"
# shellcheck disable=SC2086 # DOCKERD_ARGS is words on purpose
nohup dockerd ${DOCKERD_ARGS:-} >/tmp/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
say "dockerd did not answer within 60 s; its log:"
tail -n 40 /tmp/dockerd.log >&2
exit 1
