#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need,
# then builds and runs every test (one `swift test`, which builds once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
exec swift test "$@"
