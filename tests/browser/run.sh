#!/bin/sh
# Browser tests: installs playwright-core (never a browser: Debian's
# /usr/bin/chromium is used) and runs every *.mjs here against a roost
# started for the run. Prints "N passed, N failed" last.
# ROOST_BIN: the binary (default build/roost); screenshots go to
# test-output/screenshots/.
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
exec /usr/bin/python3 "$here/launch.py" "$@"
