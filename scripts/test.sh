#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need,
# then builds and runs every test.
#
# Two phases, one build: the unit, store, API and CLI tests first, then the
# tests that build networks of namespaces and run real traffic (datapath,
# agent, sandbox). Kept apart because making and deleting namespaces keeps
# the kernel busy enough to stall the lease and timeout tests of the first
# phase for seconds. With arguments (e.g. --filter X), one plain run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
if (($#)); then
    exec swift test "$@"
fi
networks='HiveDatapathTests|HiveAgentTests|HiveSandboxTests'
echo "== phase 1: everything but the network tests"
swift test --skip "$networks"
echo "== phase 2: datapath, agent and sandbox tests on network namespaces"
swift test --skip-build --filter "$networks"
