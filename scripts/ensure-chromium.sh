#!/usr/bin/env bash
# Makes sure a headless browser is there for the chart test (harness/tests/chart_browser.rs).
# On Debian as root it installs Debian's `chromium` when missing; elsewhere it says what to do.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no chromium found; install it (Debian: apt-get install -y chromium), or the chart test fails" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium (for the chart test)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
