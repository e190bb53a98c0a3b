#!/usr/bin/env bash
# Installs what Hive's tests need, when it is missing (Debian, as root):
# etcd for the etcd backend's tests, schemathesis for the API fuzzing run.
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
etcd --version | head -1

# Pinned so the fuzzing run's checks do not change under us.
schemathesis_version=4.32.5
if ! schemathesis --version 2>/dev/null | grep -q "$schemathesis_version"; then
    echo "installing: schemathesis $schemathesis_version"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "schemathesis==$schemathesis_version"
fi
schemathesis --version
