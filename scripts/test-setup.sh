#!/usr/bin/env bash
# Installs what the test suite needs and the machine may lack: PostgreSQL binaries and an
# unprivileged user to run them, OpenLDAP's slapd, curl, Debian's kubectl 1.20 (SPDY exec)
# beside the system kubectl, and Debian's chromium for the web console's browser test.
# Idempotent and quiet when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup-postgres.sh"
bash "$here/setup-kubectl.sh"
# The agent import test runs the import one-liner as it is: curl piped to kubectl.
command -v curl >/dev/null 2>&1 || bash "$here/install-packages.sh" test-setup curl
bash "$here/setup-bench.sh"
bash "$here/setup-chromium.sh"
if [ -f "$here/setup-slapd.sh" ]; then bash "$here/setup-slapd.sh"; fi
