#!/usr/bin/env bash
# Makes sure the tests can start a throwaway PostgreSQL (test/support/postgres.ts):
# - the server binaries (initdb, pg_ctl, postgres), installed from Debian's `postgresql`
#   package when missing, without creating or starting the packaged cluster;
# - when run as root (PostgreSQL refuses to run as root), the unprivileged system user
#   `kubegate-test` that the tests run the server as.
# Idempotent; silent when there is nothing to do.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

test_user=kubegate-test

find_initdb() {
  command -v initdb 2>/dev/null && return 0
  local candidate
  candidate=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$candidate" ] && echo "$candidate"
}

if [ -z "$(find_initdb || true)" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    # Do not create the packaged cluster: the tests start their own servers.
    mkdir -p /etc/postgresql-common
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
      echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
    fi
  fi
  bash "$here/install-packages.sh" setup-postgres postgresql
  if [ -z "$(find_initdb || true)" ]; then
    echo "setup-postgres: PostgreSQL was installed but initdb is still not found" >&2
    exit 1
  fi
fi

if [ "$(id -u)" -eq 0 ] && ! id -u "$test_user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$test_user"
fi
