#!/usr/bin/env bash
# Installs what `npm run bench` drives besides Node: Debian's nginx (a peer proxy, run as
# our own instance with its own config), wrk (the load generator) and Go (golang-go, to build
# the go-reverseproxy peer in bench/go-reverseproxy, which needs only the standard library). Idempotent and quiet
# when all are there. nginx's packaged service must never run: install-packages.sh keeps it
# from starting, and it is stopped again should a package script have started it anyway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v go >/dev/null 2>&1 || [[ -x /usr/lib/go/bin/go ]] || missing+=(golang-go)
[[ ${#missing[@]} -eq 0 ]] && exit 0

bash "$here/install-packages.sh" setup-bench "${missing[@]}"
# The benchmark runs its own instance on its own ports.
if [[ -f /run/nginx.pid ]]; then /usr/sbin/nginx -s stop >/dev/null 2>&1 || true; fi
