#!/usr/bin/env bash
# Makes sure the tests can start a throwaway PostgreSQL (test/support/postgres.ts):
# - the server binaries (initdb, pg_ctl, postgres), installed from Debian's `postgresql`
#   package when missing, without creating or starting the packaged cluster;
# - when run as root (PostgreSQL refuses to run as root), the unprivileged system user
#   `kubegate-test` that the tests run the server as.
# Idempotent; silent when there is nothing to do.
set -euo pipefail

test_user=kubegate-test

find_initdb() {
  command -v initdb 2>/dev/null && return 0
  local candidate
  candidate=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$candidate" ] && echo "$candidate"
}

if [ -z "$(find_initdb || true)" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-postgres: PostgreSQL server binaries (initdb) not found; install the 'postgresql' package" >&2
    exit 1
  fi
  # Neither create nor start the packaged cluster: the tests start their own servers.
  mkdir -p /etc/postgresql-common
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
  fi
  policy=/usr/sbin/policy-rc.d
  created_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=yes
  fi
  trap '[ "$created_policy" = yes ] && rm -f "$policy"' EXIT
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup-postgres: installing PostgreSQL failed" >&2
    exit 1
  fi
  rm -f "$log"
  if [ -z "$(find_initdb || true)" ]; then
    echo "setup-postgres: PostgreSQL was installed but initdb is still not found" >&2
    exit 1
  fi
fi

if [ "$(id -u)" -eq 0 ] && ! id -u "$test_user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$test_user"
fi
