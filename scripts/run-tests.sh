#!/usr/bin/env bash
# Runs every test file under test/ with Node's test runner (TypeScript through tsx).
# Files are listed explicitly: a bare `node --test` finds no .ts file and still exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find test -name '*.test.ts' -type f | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" "${files[@]}"
