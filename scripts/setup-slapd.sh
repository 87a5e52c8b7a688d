#!/usr/bin/env bash
# Makes sure the tests can start a throwaway OpenLDAP server (test/support/slapd.ts): the
# `slapd` binary with its modules and schemas, and the ldap-utils tools, installed from
# Debian's packages when missing. The packaged server is neither configured for use nor left
# running: the tests start their own servers with their own configuration files.
# Idempotent; silent when there is nothing to do.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -x /usr/sbin/slapd ]; then
  exit 0
fi
bash "$here/install-packages.sh" setup-slapd slapd ldap-utils
# Should the service have been started regardless (a policy-rc.d was already in place), stop it.
service slapd stop >/dev/null 2>&1 || true

if [ ! -x /usr/sbin/slapd ]; then
  echo "setup-slapd: slapd was installed but /usr/sbin/slapd is still not found" >&2
  exit 1
fi
