#!/usr/bin/env bash
# Installs what Hive's tests need, when it is missing (Debian, as root):
# etcd for the etcd backend's tests, iproute2, ethtool, ping, tshark and
# python3 for the end-to-end tests in network namespaces, schemathesis for
# the API fuzzing run, openssl to make the TLS tests' certificates.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# systemd-analyze verifies the installed unit files (scripts/install.sh).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# DHCP clients for the port-services tests, scapy to forge frames.
command -v dhclient >/dev/null 2>&1 || need+=(isc-dhcp-client)
command -v udhcpc >/dev/null 2>&1 || need+=(udhcpc)
/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || need+=(python3-scapy)
# HTTP and long streams through the stateful firewall.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
# The TLS tests make a CA and certificates with it (Tests/HiveTestSupport/TestPKI.swift).
[ -x /usr/bin/openssl ] || need+=(openssl)

if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; the tests capture as root.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
etcd --version | sed -n 1p  # sed reads it all: no SIGPIPE under pipefail

# Pinned so the fuzzing run's checks do not change under us.
schemathesis_version=4.32.5
if ! schemathesis --version 2>/dev/null | grep -F "$schemathesis_version" >/dev/null; then
    echo "installing: schemathesis $schemathesis_version"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "schemathesis==$schemathesis_version"
fi
schemathesis --version
