#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests talk to: openssl (chains, CMS, PKCS#12, s_client), micromdm's scepclient (Debian 'scep'),
# certmonger's scep-submit and daemon (with a D-Bus session bus), nginx, curl, python3 (plistlib, sqlite3) and
# util-linux's setpriv (runs the CLI as root without the privilege to ignore permission bits), PostgreSQL (a
# throw-away cluster per test file, on loopback, run as the postgres user; never the system cluster) and
# Prometheus' promtool (lints /metrics, checks and unit-tests the alert rules), systemd-analyze (the unit file),
# Debian's Chromium (the console's browser tests, driven by playwright-core: no browser is downloaded) and zbarimg
# (decodes the console's QR codes).
PEERS=(openssl scep certmonger dbus nginx curl python3 util-linux postgresql prometheus systemd chromium zbar-tools)
missing=()
for p in "${PEERS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run typecheck
npm test
