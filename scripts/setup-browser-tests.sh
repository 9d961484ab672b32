#!/usr/bin/env bash
# Installs what the browser test (ctest web-browser, tests/web/) needs: Debian's Chromium and
# playwright-core in tests/web/node_modules. Installs only what is missing; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
installed chromium || missing+=(chromium)
# A node or npm from elsewhere (nvm, NodeSource) is as good as Debian's.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-browser-tests: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The exact version in package-lock.json; `npm ci` only when it is not there already.
want=$(node -p "require('./tests/web/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./tests/web/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  echo "setup-browser-tests: installing playwright-core $want"
  (cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup-browser-tests: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?'), playwright-core $want"
