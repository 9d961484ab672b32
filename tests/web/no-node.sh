#!/bin/sh
# Stands in for the browser test (ctest web-browser) when cmake found no node: it fails, or
# with XENT_SKIP_BROWSER=1 reports a skip (77), so a missing node never passes silently.
if [ "${XENT_SKIP_BROWSER:-}" = 1 ]; then
  echo "SKIP: node not found (XENT_SKIP_BROWSER=1)"
  exit 77
fi
echo "FAIL: node not found. Install it with scripts/setup-browser-tests.sh, or set XENT_SKIP_BROWSER=1 to skip this test."
exit 1
