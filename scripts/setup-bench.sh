#!/usr/bin/env bash
# Installs what `npm run bench` drives besides Node: Debian's nginx (a peer proxy, run as
# our own instance with its own config) and wrk (the load generator). Idempotent and quiet
# when both are there. nginx's packaged service must never start: a policy-rc.d that denies
# every service start is in place for the duration of the install, and the default site's
# service is stopped again should a package script have started it anyway.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[[ ${#missing[@]} -eq 0 ]] && exit 0

policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  created_policy=1
fi
cleanup() { if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }
if ! install; then
  apt-get update -q >/dev/null 2>&1 || true
  if ! install; then
    echo "setup-bench: 'apt-get install ${missing[*]}' failed" >&2
    exit 1
  fi
fi
# Should a package script have started the service regardless, stop it: the benchmark runs
# its own instance on its own ports.
if [[ -f /run/nginx.pid ]]; then /usr/sbin/nginx -s stop >/dev/null 2>&1 || true; fi
