#!/usr/bin/env bash
# Runs the Hive sandbox from a fresh clone: installs the Linux tools it
# drives when missing (Debian, as root), builds, and runs `hive sandbox`.
# Arguments go to `hive sandbox` (e.g. `scripts/sandbox.sh down`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "the sandbox must run as root: it creates network namespaces and veth pairs (try: sudo $0)" >&2
    exit 1
fi
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
# The outside world's sysctls; curl for the commands the sandbox prints.
command -v sysctl >/dev/null 2>&1 || need+=(procps)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The VMs get their addresses by DHCP, as cloud VMs do.
command -v udhcpc >/dev/null 2>&1 || command -v dhclient >/dev/null 2>&1 || need+=(udhcpc)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
exec swift run hive sandbox "$@"
