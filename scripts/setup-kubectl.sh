#!/usr/bin/env bash
# Makes the kubectl binaries the integration tests drive available, idempotently.
#
# - Debian's kubernetes-client (kubectl 1.20, the last SPDY-only exec client we can get) is
#   unpacked into .test-tools/kubectl-1.20/ WITHOUT installing the package: it would conflict
#   with /usr/bin/kubectl. `apt-get download` + `dpkg -x` needs no dpkg database change.
# - /usr/bin/kubectl must exist: a dispatcher shipping clients 1.27–1.33 that picks the one
#   matching the server's /version minor.
# Quiet and exit 0 when everything is already in place.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="$repo_root/.test-tools/kubectl-1.20"
target_bin="$target_dir/usr/bin/kubectl"

if [[ ! -x /usr/bin/kubectl ]]; then
  echo "setup-kubectl: /usr/bin/kubectl (the version dispatcher) is missing" >&2
  exit 1
fi

if [[ -x "$target_bin" ]]; then
  exit 0
fi

package="kubernetes-client"
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
# apt-get download writes into the current directory; the _apt user cannot, so it would warn.
chmod 0755 "$work_dir"

download() {
  (cd "$work_dir" && apt-get download -q "$package" >/dev/null 2>&1)
}

if ! download; then
  apt-get update -q >/dev/null 2>&1 || true
  if ! download; then
    echo "setup-kubectl: 'apt-get download $package' failed; candidates:" >&2
    apt-cache search kubernetes >&2 || true
    exit 1
  fi
fi

deb_file="$(find "$work_dir" -maxdepth 1 -name "${package}_*.deb" | head -n 1)"
if [[ -z "$deb_file" ]]; then
  echo "setup-kubectl: no .deb was downloaded" >&2
  exit 1
fi

rm -rf "$target_dir"
mkdir -p "$target_dir"
dpkg -x "$deb_file" "$target_dir"

if [[ ! -x "$target_bin" ]]; then
  echo "setup-kubectl: $target_bin missing after unpacking $(basename "$deb_file")" >&2
  exit 1
fi
