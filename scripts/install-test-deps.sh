#!/usr/bin/env bash
# Installs what Hive's tests need, when it is missing (Debian, as root).
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)

if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package starts nothing without systemd; make sure no stray
# member listens on the default ports the tests avoid anyway.
etcd --version | head -1
