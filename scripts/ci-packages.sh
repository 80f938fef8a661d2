#!/usr/bin/env bash
# Debian packages the tests use when present: mosquitto (the oracle's tests run against it
# as well as the embedded aedes broker), chromium (the dashboard's browser test) and socat
# (joins two pseudo-terminals into the serial line of the oracle's Modbus RTU test).
# Installs what is missing when run as root; otherwise says what is missing and goes on
# (those tests then skip and say so).
set -euo pipefail

log() { echo "ci-packages: $*" >&2; }

missing=()
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/socat ] || missing+=(socat)
if [ ${#missing[@]} -eq 0 ]; then
  log "mosquitto, chromium and socat present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "not root: cannot install ${missing[*]}; their tests will skip"
  exit 0
fi
log "installing ${missing[*]}"
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# The package starts a system broker on :1883 where there is an init system; the tests start
# their own on other ports and do not need it.
if command -v service >/dev/null 2>&1; then service mosquitto stop >/dev/null 2>&1 || true; fi
