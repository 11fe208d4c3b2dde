#!/usr/bin/env bash
# Installs what the HTML report's browser test needs: Debian's Chromium (apt, as root or
# through sudo) and playwright-core (npm, tests/browser/package-lock.json; it drives the
# installed Chromium and downloads no browser). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  echo "setup-browser: installing Debian's chromium (a minute or two)" >&2
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi
stamp=tests/browser/node_modules/.installed
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi
