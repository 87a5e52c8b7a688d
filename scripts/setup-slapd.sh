#!/usr/bin/env bash
# Makes sure the tests can start a throwaway OpenLDAP server (test/support/slapd.ts): the
# `slapd` binary with its modules and schemas, and the ldap-utils tools, installed from
# Debian's packages when missing. The packaged server is neither configured for use nor left
# running: the tests start their own servers with their own configuration files.
# Idempotent; silent when there is nothing to do.
set -euo pipefail

if [ -x /usr/sbin/slapd ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-slapd: /usr/sbin/slapd not found; install the 'slapd' and 'ldap-utils' packages" >&2
  exit 1
fi

# Keep the package's post-install from starting the service (the same guard as
# setup-postgres.sh); stop it anyway below in case the guard was already in place.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  created_policy=yes
fi
trap '[ "$created_policy" = yes ] && rm -f "$policy"' EXIT

log=$(mktemp)
install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils
}
# Refresh the package lists only when the install cannot find the packages without it.
if ! install >"$log" 2>&1; then
  if ! { apt-get update -qq && install; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup-slapd: installing slapd failed" >&2
    exit 1
  fi
fi
rm -f "$log"
service slapd stop >/dev/null 2>&1 || true

if [ ! -x /usr/sbin/slapd ]; then
  echo "setup-slapd: slapd was installed but /usr/sbin/slapd is still not found" >&2
  exit 1
fi
