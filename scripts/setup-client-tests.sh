#!/usr/bin/env bash
# Installs what the client test (ctest openai-client, tests/openai/) needs: node and npm
# (Debian's, when none is on PATH) and the official `openai` npm package in
# tests/openai/node_modules, at the version package-lock.json pins. Needs the npm registry
# once; the test itself runs offline. Installs only what is missing; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-client-tests: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want=$(node -p "require('./tests/openai/package-lock.json').packages['node_modules/openai'].version")
have=$(node -p "try { require('./tests/openai/node_modules/openai/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  echo "setup-client-tests: installing openai $want"
  (cd tests/openai && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup-client-tests: node $(node --version), openai $want"
