#!/usr/bin/env bash
# Makes sure a Docker engine answers. On a fresh Debian machine (as root) it installs Debian's
# docker.io and starts dockerd in the background; elsewhere it says what to do.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker engine answers and this is not root: start one (e.g. 'sudo systemctl start docker')" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing Debian's docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
echo "ensure-docker: starting dockerd (log: /tmp/dockerd.log)" >&2
nohup dockerd >/tmp/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; its log:" >&2
tail -n 40 /tmp/dockerd.log >&2
exit 1
