#!/usr/bin/env bash
# Installs Debian packages for the test and benchmark setup scripts, the same way for all:
#   install-packages.sh <caller> <package>...
# Quiet on success; on failure prints apt's output and names the caller. Needs root. The
# package lists are refreshed only when the install fails without it. No packaged service is
# started meanwhile (a policy-rc.d that denies every start is in place for the install and
# removed afterwards, unless one was there already): the tests and benchmarks run their own
# servers with their own configuration.
set -euo pipefail

caller=$1
shift
if [ "$(id -u)" -ne 0 ]; then
  echo "$caller: missing Debian packages: $*; install them (as root: apt-get install $*)" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  created_policy=yes
fi
log=$(mktemp)
cleanup() {
  rm -f "$log"
  if [ "$created_policy" = yes ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; }
if ! install "$@" >"$log" 2>&1; then
  if ! { apt-get update -qq && install "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "$caller: 'apt-get install $*' failed" >&2
    exit 1
  fi
fi
