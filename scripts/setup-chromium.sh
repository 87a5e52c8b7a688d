#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests of the web console (test/browser/), which
# drive it with playwright-core through executablePath /usr/bin/chromium. Playwright never
# downloads a browser here: playwright-core has no install step, and the tests refuse to run
# any other binary. Quiet and exit 0 when it is already installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -x /usr/bin/chromium ]; then exit 0; fi
bash "$here/install-packages.sh" setup-chromium chromium fonts-dejavu-core
if [ ! -x /usr/bin/chromium ]; then
  echo "setup-chromium: /usr/bin/chromium is missing after installing the chromium package" >&2
  exit 1
fi
