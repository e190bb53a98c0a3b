#!/usr/bin/env bash
# Whole-system benchmark: VM to VM across two hosts, first through Linux's own
# bridge + kernel vxlan (the baseline), then through the project's C reference
# forwarder (the userspace limit), then through Hive, on the same namespaces
# and veths in one run (the rig of shared/ANCHORS.md):
#
#  ns vmA               ns hostA                      ns hostB               ns vmB
#  eth0 100.65.0.10 -- hive-b-vmA [datapath] ul0 == ul0 [datapath] hive-b-vmB -- eth0 100.65.0.20
#  MTU 1400              underlay 100.64.0.1/24 (veth, MTU 1500)  100.64.0.2/24     MTU 1400
#                        (ul0 is hive-b-ul0; the two meet on a bridge in ns hive-bench-ul)
#
# Datapaths, in this order (so that the machine's state is comparable):
#   1. Linux, offloads on: in each host a bridge with the VM's host-side veth
#      and a vxlan device (VNI 42, dstport 4789, remote = the other host).
#   2. Linux, tx-off: the same after `ethtool -K eth0 tx off` in both VMs
#      (and on the host ends), so the VM stacks send MTU-sized frames.
#   3. C forwarder, simple (tx-off): the Linux bridges and vxlans removed,
#      one `cfwd` per host namespace (shared/bench/cref/cfwd.c, built with
#      gcc: a plain Geneve L2 pipe, AF_PACKET + recvmmsg/sendmmsg, poll mode,
#      4 MB socket buffers), the VMs still tx-off.
#   4. C forwarder, offload: the VMs' default offloads back on, cfwd with
#      `-O -b 32` (PACKET_VNET_HDR, UDP GSO, UDP GRO, re-coalescing).
#   5. C forwarder, offload, underlay splits to wire size: 4 after
#      `ethtool -K hive-b-ul0 tx-udp-segmentation off gro on
#      rx-udp-gro-forwarding on` in both hosts (what a NIC without UDP
#      segmentation offload does); the underlay's settings restored after.
#   6. Hive: offloads on (the VMs' defaults, as for 4), etcd, `hive api` and
#      one `hive agent` per host started; one bridge with vmA bound on hostA
#      and vmB on hostB, built with the CLI. Hive's datapath takes
#      super-frames and partial checksums with their virtio-net headers
#      (PACKET_VNET_HDR, UDP GSO and GRO), so its baselines are 1 and 4.
#   7. Hive, underlay splits to wire size: 6 with the underlay of 5.
#   8. Hive traced: 6 with a live trace armed on a third port of hostA, vmC
#      (a VM namespace of its own), which carries no traffic.
#   9. Hive stateful: the bridge of 6 with vmB's port in a security
#      group (ingress TCP 80 and the iperf3 port, UDP on the iperf3 port,
#      ICMP, from anywhere); vmA's port has no group. Every connection to vmB
#      goes through connection tracking and the agents' flow-state sharing.
#  10. Hive routed: vmB's port moved to a second bridge (a new port,
#      without the group), a router between the two; the VMs keep their
#      addresses, in two /28s.
#  11. Hive SNAT: vmB becomes "the outside": its veth is bound to an
#      exterior port of the router (an uplink, 100.65.0.17/28) instead of a
#      bridge port, and the router's gateway is that port, so every packet
#      from vmA is source-translated to 100.65.0.17 (SNAT ports leased per
#      host) and every reply translated back: the edge of issue 11.
# Each: ping RTT (median, p99), iperf3 TCP 1 and 4 streams, iperf3 UDP 64 B
# (packets received per second, loss), new TCP connections per second (wrk
# with `Connection: close` against nginx in vmB, one connection per request),
# and for the C forwarder and Hive the CPU of each datapath process.
# Between 8 and 9, on the bridge of 6, the upcall storm: vmC (on hostA, its
# port in a security group that allows all egress, so each new destination
# port is a new tracked connection and a new flow) sends UDP to random ports
# of vmB as fast as it can while vmA pings vmB; vmA's ping with and without
# the storm, and the agents' upcalls and upcall-limit drops during it.
# After the table, the goals of issue 12, met or not, from this run's figures.
#
# Usage (root):  scripts/bench-overlay.sh
#   HIVE_BIN=path     the hive binary (default: build it in release into .build-release)
#   BENCH_SECONDS=N   seconds per iperf3 and wrk run (default 10)
#   BENCH_QUICK=1     smoke run: 2 s iperf3 and wrk runs, 100 pings
#   BENCH_CFWD=0      skip the C forwarder systems (3-5)
#   CFWD_SRC=path     the C forwarder's source (default: ../shared/bench/cref/cfwd.c from the
#                     repository's root; when it is missing its systems are skipped, and the report says so)
#   BENCH_SPLIT=0     skip the systems whose underlay splits datagrams to wire size (5 and 7)
#   BENCH_STORM=0     skip the upcall storm
#   BENCH_UPCALLS_PER_PORT=N  the agents' --upcalls-per-port (default: the agent's own, 20000)
#   BENCH_DATAPATH_NICE=N     the agents' --datapath-nice (default: the agent's own, 0)
#   BENCH_STATEFUL=0  skip Hive's stateful variant (vmB's port in a security group)
#   BENCH_ROUTED=0    skip Hive's routed variant (vmB behind a router on a second bridge)
#   BENCH_SNAT=0      skip Hive's SNAT variant (needs the routed one)
#   BENCH_TRACED=0    skip Hive's traced variant (the bridge again, a live trace armed on another port of hostA)
#   BENCH_LINUX_ONLY=1  measure only the Linux baseline and the C forwarder (no hive binary needed)
#   BENCH_LOG_DIR=dir keep the logs (etcd, api, agents, cfwd, nginx, iperf3 JSON, wrk output) there
# The Markdown report goes to stdout, progress to stderr. Everything the
# script creates (namespaces hive-bench-*, interfaces hive-b-* inside them)
# and every process it starts is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
for variable in BENCH_CFWD BENCH_DATAPATH_NICE BENCH_LOG_DIR BENCH_LINUX_ONLY BENCH_QUICK BENCH_ROUTED BENCH_SECONDS BENCH_SNAT BENCH_SPLIT BENCH_STATEFUL BENCH_STORM BENCH_TRACED BENCH_UPCALLS_PER_PORT CFWD_SRC HIVE_BIN; do
    if [ -n "${!variable:-}" ]; then COMMAND_LINE="$variable=${!variable} $COMMAND_LINE"; fi
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    SECONDS_PER_RUN=${BENCH_SECONDS:-2}
    PINGS=100
else
    SECONDS_PER_RUN=${BENCH_SECONDS:-10}
    PINGS=500
fi
case "$SECONDS_PER_RUN" in '' | *[!0-9]* | 0) echo "BENCH_SECONDS must be a whole number of seconds >= 1, not '$SECONDS_PER_RUN'" >&2; exit 2 ;; esac
LINUX_ONLY=${BENCH_LINUX_ONLY:-0}
ROUTED=${BENCH_ROUTED:-1}
SNAT=${BENCH_SNAT:-1}
STATEFUL=${BENCH_STATEFUL:-1}
TRACED=${BENCH_TRACED:-1}
CFWD=${BENCH_CFWD:-1}
CFWD_SRC=${CFWD_SRC:-$ROOT/../shared/bench/cref/cfwd.c}
SPLIT=${BENCH_SPLIT:-1}
STORM=${BENCH_STORM:-1}

# Names. Namespaces start with hive-bench- ("bench" is not hex, so no test's
# random hive-XXXX- prefix matches it); interfaces with hive-b- (15 bytes max).
NS_UNDERLAY=hive-bench-ul
NS_HOST_A=hive-bench-hA
NS_HOST_B=hive-bench-hB
NS_VM_A=hive-bench-vmA
NS_VM_B=hive-bench-vmB
NAMESPACES=("$NS_UNDERLAY" "$NS_HOST_A" "$NS_HOST_B" "$NS_VM_A" "$NS_VM_B")
# vmC, on hostA, for the traced variant and the upcall storm: made when needed.
NS_VM_C=hive-bench-vmC
UNDERLAY_BRIDGE=hive-b-ul
UPLINK=hive-b-ul0
VETH_A=hive-b-vmA
VETH_B=hive-b-vmB
VETH_C=hive-b-vmC
LINUX_BRIDGE=hive-b-br
VXLAN=hive-b-vx42
UNDERLAY_A=100.64.0.1
UNDERLAY_B=100.64.0.2
VM_A_IP=100.65.0.10
VM_B_IP=100.65.0.20
VM_C_IP=100.65.0.30
VM_A_MAC=02:00:64:41:00:0a
VM_B_MAC=02:00:64:41:00:14
VM_C_MAC=02:00:64:41:00:1e
VM_MTU=1400
UNDERLAY_MTU=1500
IPERF_PORT=5201
HTTP_PORT=80
# wrk's load for the connection rate: the same for every system.
WRK_THREADS=1
WRK_CONNECTIONS=32
SECURITY_GROUP=bench-sg
STORM_GROUP=bench-storm
# The C forwarder's flags (shared/bench/cref/README.md): one poll loop, 4 MB socket buffers.
CFWD_FLAGS=(-m poll -B 4194304)
# "The underlay splits datagrams to wire size": no UDP segmentation offload on
# the underlay veths, GRO on their receive side (as a NIC without USO would).
SPLIT_FEATURES=(tx-udp-segmentation off gro on rx-udp-gro-forwarding on)

REPORTED=0
declare -A RESULT  # RESULT[system.metric]
PIDS=()         # every process started, in start order
CREATED_NAMESPACES=()
WORK=""
KEEP_LOGS=0

namespace_exists() { [ -e "/run/netns/$1" ]; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
FAILURE=""
die() { FAILURE="$*"; log "ERROR: $*"; exit 1; }

# --- cleanup -----------------------------------------------------------------

stop_process() {
    local pid=$1 waited=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop within 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +eu
    # What was measured before a failure is still worth a report.
    if [ $status -ne 0 ] && [ "$REPORTED" = 0 ] && [ -n "${RESULT[linux-on.ping_median]:-}" ]; then
        report
        echo
        echo "**The run failed${FAILURE:+: $FAILURE}** (exit status $status); the systems missing above were not measured."
    fi
    if [ $status -ne 0 ] && [ -n "$WORK" ] && [ $KEEP_LOGS = 0 ]; then
        for file in "$WORK"/*.log; do
            [ -s "$file" ] || continue
            log "last lines of $(basename "$file"):"
            tail -n 15 "$file" | sed 's/^/    /' >&2
        done
    fi
    # Reverse start order: agents before the API before etcd (agents revoke their leases).
    local index
    for ((index = ${#PIDS[@]} - 1; index >= 0; index--)); do
        stop_process "${PIDS[index]}"
    done
    for ((index = ${#CREATED_NAMESPACES[@]} - 1; index >= 0; index--)); do
        local namespace=${CREATED_NAMESPACES[index]}
        namespace_exists "$namespace" || continue
        # Anything still inside one of our namespaces was started by this script.
        for pid in $(ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns delete "$namespace" 2>/dev/null || log "could not delete namespace $namespace"
    done
    if [ -n "$WORK" ]; then
        if [ $KEEP_LOGS = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
    fi
    [ $status -eq 0 ] || log "failed (exit status $status); everything it created is removed"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites -----------------------------------------------------------

[ "$(id -u)" = 0 ] || die "run as root: it creates network namespaces and veth pairs"

install_tools() {
    local missing=()
    command -v iperf3 >/dev/null || missing+=(iperf3)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v jq >/dev/null || missing+=(jq)
    command -v wrk >/dev/null || missing+=(wrk)
    # The package may also start the distribution's own nginx (in the root
    # namespace, where it is harmless); the benchmark's runs in vmB's with its
    # own configuration.
    command -v nginx >/dev/null || missing+=(nginx-light)
    if [ "$LINUX_ONLY" != 1 ]; then command -v etcd >/dev/null || missing+=(etcd-server); fi
    if [ "$CFWD" = 1 ] && [ -f "$CFWD_SRC" ]; then command -v gcc >/dev/null || missing+=(gcc libc6-dev); fi
    if [ "$LINUX_ONLY" != 1 ] && [ "$STORM" = 1 ]; then command -v python3 >/dev/null || missing+=(python3); fi
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
}
install_tools
# The system's python3 when there is one (a version manager's shim may not
# execute it in the same process).
PYTHON=$(command -v /usr/bin/python3 || command -v python3 || true)

for namespace in "${NAMESPACES[@]}" "$NS_VM_C"; do
    if namespace_exists "$namespace"; then
        die "namespace $namespace already exists (another run, or one that was killed with SIGKILL); remove it with: ip netns delete $namespace"
    fi
done

if [ -n "${BENCH_LOG_DIR:-}" ]; then
    # An earlier run's etcd data and agent state would register its hosts again.
    if [ -d "$BENCH_LOG_DIR" ] && [ -n "$(ls -A "$BENCH_LOG_DIR")" ]; then
        die "BENCH_LOG_DIR $BENCH_LOG_DIR is not empty (an earlier run's logs and etcd data); give a new directory"
    fi
    mkdir -p "$BENCH_LOG_DIR"
    WORK=$(cd "$BENCH_LOG_DIR" && pwd)
    KEEP_LOGS=1
else
    WORK=$(mktemp -d /tmp/hive-bench.XXXXXX)
fi

if [ "$LINUX_ONLY" != 1 ]; then
    if [ -z "${HIVE_BIN:-}" ]; then
        log "building hive in release (swift build -c release --product hive --scratch-path .build-release)"
        (cd "$ROOT" && swift build -c release --product hive --scratch-path .build-release >&2)
        HIVE_BIN="$ROOT/.build-release/release/hive"
    fi
    [ -x "$HIVE_BIN" ] || die "HIVE_BIN '$HIVE_BIN' is not an executable file"
fi

# --- the rig -----------------------------------------------------------------

in_ns() { local namespace=$1; shift; ip netns exec "$namespace" "$@"; }

add_namespace() {
    ip netns add "$1"
    CREATED_NAMESPACES+=("$1")
    ip -n "$1" link set dev lo up
}

build_rig() {
    log "creating namespaces ${NAMESPACES[*]}"
    add_namespace "$NS_UNDERLAY"
    ip -n "$NS_UNDERLAY" link add name "$UNDERLAY_BRIDGE" type bridge
    ip -n "$NS_UNDERLAY" link set dev "$UNDERLAY_BRIDGE" up
    local number=1 host address
    for host in "$NS_HOST_A" "$NS_HOST_B"; do
        address=$([ $number = 1 ] && echo $UNDERLAY_A || echo $UNDERLAY_B)
        add_namespace "$host"
        ip -n "$NS_UNDERLAY" link add name "hive-b-u$number" type veth peer name "$UPLINK" netns "$host"
        ip -n "$NS_UNDERLAY" link set dev "hive-b-u$number" master "$UNDERLAY_BRIDGE" up
        ip -n "$host" link set dev "$UPLINK" mtu $UNDERLAY_MTU
        ip -n "$host" address add "$address/24" dev "$UPLINK"
        ip -n "$host" link set dev "$UPLINK" up
        number=$((number + 1))
    done
    add_vm "$NS_VM_A" "$NS_HOST_A" "$VETH_A" "$VM_A_MAC" "$VM_A_IP"
    add_vm "$NS_VM_B" "$NS_HOST_B" "$VETH_B" "$VM_B_MAC" "$VM_B_IP"
}

add_vm() {
    local vm=$1 host=$2 veth=$3 mac=$4 address=$5
    add_namespace "$vm"
    # IPv6 off in the VM: no router solicitations or ND in the measurements.
    in_ns "$vm" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # A wide port range and TIME_WAIT reuse, as load generators run: the
    # connections of one wrk test (up to 70,000) must not leave the next
    # system's test short of source ports.
    in_ns "$vm" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    ip -n "$vm" link add name eth0 type veth peer name "$veth" netns "$host"
    ip -n "$vm" link set dev eth0 address "$mac" mtu $VM_MTU
    ip -n "$vm" address add "$address/24" dev eth0
    ip -n "$vm" link set dev eth0 up
    ip -n "$host" link set dev "$veth" addrgenmode none
    ip -n "$host" link set dev "$veth" mtu $VM_MTU up
}

# Offloads of both VMs' eth0 and their host ends: "on" (veth's defaults) or "off".
set_tx_offload() {
    in_ns "$NS_VM_A" ethtool -K eth0 tx "$1" >/dev/null
    in_ns "$NS_VM_B" ethtool -K eth0 tx "$1" >/dev/null
    in_ns "$NS_HOST_A" ethtool -K "$VETH_A" tx "$1" >/dev/null
    in_ns "$NS_HOST_B" ethtool -K "$VETH_B" tx "$1" >/dev/null
}

# What vmA's eth0 offloads ("tx checksum / TSO"), to show in the report
# which state each system was measured in. TSO is read from the feature
# itself (tx-tcp-segmentation): ethtool's summary line above it can say "on"
# while it is off.
vm_offloads() {
    in_ns "$NS_VM_A" ethtool -k eth0 | awk -F': ' '
        $1 == "tx-checksumming" { split($2, t, " "); tx = t[1] }
        $1 ~ /^[ \t]*tx-tcp-segmentation$/ { split($2, s, " "); tso = s[1] }
        END { printf "%s / %s\n", tx, tso }'
}

# The underlay "splits datagrams to wire size" (on) or keeps veth's defaults
# (off): the three features of SPLIT_FEATURES on hive-b-ul0 in both hosts,
# their previous values kept in SPLIT_RESTORE_<host> and put back by "off".
declare -A SPLIT_RESTORE=()
set_underlay_split() {
    local host
    for host in "$NS_HOST_A" "$NS_HOST_B"; do
        if [ "$1" = on ]; then
            SPLIT_RESTORE[$host]=$(in_ns "$host" ethtool -k "$UPLINK" | awk -F': ' '
                $1 == "tx-udp-segmentation" { split($2, v, " "); printf "tx-udp-segmentation %s ", v[1] }
                $1 == "generic-receive-offload" { split($2, v, " "); printf "gro %s ", v[1] }
                $1 == "rx-udp-gro-forwarding" { split($2, v, " "); printf "rx-udp-gro-forwarding %s ", v[1] }')
            in_ns "$host" ethtool -K "$UPLINK" "${SPLIT_FEATURES[@]}" >/dev/null
        elif [ -n "${SPLIT_RESTORE[$host]:-}" ]; then
            # shellcheck disable=SC2086 # pairs of words: feature value
            in_ns "$host" ethtool -K "$UPLINK" ${SPLIT_RESTORE[$host]} >/dev/null
            SPLIT_RESTORE[$host]=""
        fi
    done
}

linux_overlay_up() {
    local host veth remote local_address
    for host in "$NS_HOST_A" "$NS_HOST_B"; do
        if [ "$host" = "$NS_HOST_A" ]; then veth=$VETH_A local_address=$UNDERLAY_A remote=$UNDERLAY_B
        else veth=$VETH_B local_address=$UNDERLAY_B remote=$UNDERLAY_A; fi
        ip -n "$host" link add name "$LINUX_BRIDGE" type bridge
        ip -n "$host" link add name "$VXLAN" type vxlan id 42 dstport 4789 local "$local_address" remote "$remote" dev "$UPLINK"
        ip -n "$host" link set dev "$VXLAN" addrgenmode none
        ip -n "$host" link set dev "$LINUX_BRIDGE" addrgenmode none
        ip -n "$host" link set dev "$VXLAN" master "$LINUX_BRIDGE" up
        ip -n "$host" link set dev "$veth" master "$LINUX_BRIDGE"
        ip -n "$host" link set dev "$LINUX_BRIDGE" up
    done
}

linux_overlay_down() {
    local host
    for host in "$NS_HOST_A" "$NS_HOST_B"; do
        ip -n "$host" link delete dev "$VXLAN"
        ip -n "$host" link delete dev "$LINUX_BRIDGE"
    done
    ip -n "$NS_VM_A" neigh flush all
    ip -n "$NS_VM_B" neigh flush all
}

check_rig() {
    local namespace
    for namespace in "${NAMESPACES[@]}"; do
        namespace_exists "$namespace" || die "namespace $namespace vanished mid-run (did someone run 'hive sandbox up/down', which removes every hive-* namespace?)"
    done
}

# Start a background process and remember its pid: start_process LOG COMMAND...
start_process() {
    local logfile=$1; shift
    "$@" >"$logfile" 2>&1 &
    PIDS+=($!)
    LAST_PID=$!
    PROCESS_NAME[$!]=$(basename "$logfile" .log)
    WATCHED_PIDS+=($!)
}

# stop_started PID: stop a process start_process started before the end of
# the run, and forget it (no later wait gives up on it, the cleanup does not
# signal its reused pid).
stop_started() {
    local pid=$1 kept=() other
    stop_process "$pid"
    for other in "${PIDS[@]}"; do [ "$other" = "$pid" ] || kept+=("$other"); done
    PIDS=("${kept[@]}")
    kept=()
    for other in "${WATCHED_PIDS[@]}"; do [ "$other" = "$pid" ] || kept+=("$other"); done
    WATCHED_PIDS=("${kept[@]}")
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...; gives up early when a process in WATCHED_PIDS exits
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds)) pid
    until "$@" >/dev/null 2>&1; do
        for pid in "${WATCHED_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || die "process $pid ($(process_name "$pid"), see $(process_name "$pid").log) exited while waiting for $what"
        done
        [ $SECONDS -lt $deadline ] || die "timed out after ${seconds}s waiting for $what"
        sleep 0.2
    done
}
WATCHED_PIDS=()
declare -A PROCESS_NAME
process_name() { echo "${PROCESS_NAME[$1]:-?}"; }

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        ss -Htln "sport = :$port" | grep -q . || { echo $port; return; }
    done
}

# --- measurements ------------------------------------------------------------



iperf_server_up() { in_ns "$NS_VM_B" ss -Htln "sport = :$IPERF_PORT" | grep -q .; }

start_iperf_server() {
    start_process "$WORK/iperf3-server.log" ip netns exec "$NS_VM_B" iperf3 -s -p $IPERF_PORT
    IPERF_SERVER_PID=$LAST_PID
    wait_for 10 "the iperf3 server in $NS_VM_B" iperf_server_up
}

http_server_up() { in_ns "$NS_VM_B" ss -Htln "sport = :$HTTP_PORT" | grep -q .; }

# nginx in vmB on port 80 for the connection rate: one worker, no access log,
# every request answered "ok" from the configuration; its pid file, logs and
# temporary directories in the work directory (nothing system-wide).
start_http_server() {
    local dir="$WORK/nginx" temp_paths="" module
    mkdir -p "$dir"
    # A temporary path of each module built in (nginx-light leaves some out),
    # so that nginx creates none under /var/lib/nginx.
    temp_paths="    client_body_temp_path $dir/client-body;"
    for module in proxy fastcgi uwsgi scgi; do
        nginx -V 2>&1 | grep -q -- "--without-http_${module}_module" && continue
        temp_paths+=$'\n'"    ${module}_temp_path $dir/$module;"
    done
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    default_type text/plain;
$temp_paths
    server {
        listen $HTTP_PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF
    start_process "$WORK/nginx.log" ip netns exec "$NS_VM_B" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf"
    wait_for 10 "nginx in $NS_VM_B on port $HTTP_PORT" http_server_up
}

# Pings until one answer (ARP, first-packet setup), up to SECONDS.
ping_until_answered() {
    local seconds=$1 deadline=$((SECONDS + $1))
    until in_ns "$NS_VM_A" ping -c 1 -W 1 -q $VM_B_IP >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

measure_ping() {
    local system=$1 out="$WORK/$1-ping.txt"
    in_ns "$NS_VM_A" ping -c 5 -i 0.2 -W 1 -q $VM_B_IP >/dev/null 2>&1 || true
    in_ns "$NS_VM_A" ping -i 0.01 -c $PINGS -W 1 $VM_B_IP >"$out" 2>&1 || true
    local times
    times=$(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$out" | sort -g)
    local count
    count=$(printf '%s\n' "$times" | grep -c . || true)
    RESULT[$system.ping_lost]=$((PINGS - count))
    if [ "$count" -eq 0 ]; then
        RESULT[$system.ping_median]=- RESULT[$system.ping_p99]=-
        return
    fi
    RESULT[$system.ping_median]=$(printf '%s\n' "$times" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f", m * 1000 }')
    RESULT[$system.ping_p99]=$(printf '%s\n' "$times" | awk '{ v[NR] = $1 } END {
        i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; printf "%.0f", v[i] * 1000 }')
}

# "utime stime" of a process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; }

# record_cpu KEY "UTIME STIME"-BEFORE PID ELAPSED_NS: the process's CPU since
# BEFORE as % of one core, in RESULT[KEY] (user + system), KEY_user, KEY_sys.
record_cpu() {
    local key=$1 before=$2 pid=$3 elapsed=$4 total user system
    read -r total user system < <(awk -v a="$before" -v b="$(cpu_ticks "$pid")" -v t="$(getconf CLK_TCK)" -v ns="$elapsed" 'BEGIN {
        split(a, x, " "); split(b, y, " "); f = 100 / t / (ns / 1e9)
        printf "%.0f %.0f %.0f\n", (y[1] - x[1] + y[2] - x[2]) * f, (y[1] - x[1]) * f, (y[2] - x[2]) * f }')
    RESULT[$key]=$total RESULT[${key}_user]=$user RESULT[${key}_sys]=$system
}
now_ns() { date +%s%N; }

# measure_tcp SYSTEM STREAMS [PIDS to account CPU for...]
measure_tcp() {
    local system=$1 streams=$2; shift 2
    local json="$WORK/$system-tcp$streams.json" pid before=() start end
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    start=$(now_ns)
    in_ns "$NS_VM_A" timeout $((SECONDS_PER_RUN + 30)) iperf3 -c $VM_B_IP -p $IPERF_PORT -t "$SECONDS_PER_RUN" -P "$streams" -J >"$json" || true
    end=$(now_ns)
    local index=0
    for pid in "$@"; do
        record_cpu "$system.cpu_tcp$streams.$index" "${before[index]}" "$pid" $((end - start))
        index=$((index + 1))
    done
    if jq -e '.end.sum_received.bits_per_second' "$json" >/dev/null 2>&1; then
        RESULT[$system.tcp$streams]=$(jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' "$json")
        RESULT[$system.tcp${streams}_retransmits]=$(jq -r '.end.sum_sent.retransmits // "-"' "$json")
    else
        log "$system: iperf3 TCP $streams stream(s) failed: $(jq -r '.error // "no JSON"' "$json" 2>/dev/null || head -c 300 "$json")"
        RESULT[$system.tcp$streams]=- RESULT[$system.tcp${streams}_retransmits]=-
    fi
}

measure_udp() {
    local system=$1; shift
    local json="$WORK/$system-udp64.json" pid before=() start end
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    start=$(now_ns)
    in_ns "$NS_VM_A" timeout $((SECONDS_PER_RUN + 30)) iperf3 -c $VM_B_IP -p $IPERF_PORT -u -l 64 -b 0 -t "$SECONDS_PER_RUN" -J >"$json" || true
    end=$(now_ns)
    local index=0
    for pid in "$@"; do
        record_cpu "$system.cpu_udp.$index" "${before[index]}" "$pid" $((end - start))
        index=$((index + 1))
    done
    if jq -e '.end.sum_received.packets' "$json" >/dev/null 2>&1; then
        # sum_received is the server's count; rates are over the sender's duration
        # (the server's also holds the wait for the end of the test).
        RESULT[$system.udp_received]=$(jq -r '.end.sum_received | .packets - .lost_packets' "$json")
        RESULT[$system.udp_kpps]=$(jq -r '(.end.sum_received | .packets - .lost_packets) / .end.sum_sent.seconds / 1000 | . * 10 | round / 10' "$json")
        RESULT[$system.udp_sent_kpps]=$(jq -r '.end.sum_sent | .packets / .seconds / 1000 | . * 10 | round / 10' "$json")
        RESULT[$system.udp_loss]=$(jq -r '.end.sum_received.lost_percent | . * 10 | round / 10' "$json")
    else
        log "$system: iperf3 UDP failed: $(jq -r '.error // "no JSON"' "$json" 2>/dev/null || head -c 300 "$json")"
        RESULT[$system.udp_kpps]=- RESULT[$system.udp_sent_kpps]=- RESULT[$system.udp_loss]=-
    fi
}

# measure_connections SYSTEM [PIDS to account CPU for...]: new TCP connections
# per second, as wrk's requests per second with `Connection: close` (nginx
# closes each connection after its answer, wrk opens a new one), and wrk's
# errors (socket errors: connect, read, write, timeout; and answers not 2xx/3xx).
measure_connections() {
    local system=$1; shift
    local out="$WORK/$system-conn.txt" pid before=() start end
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    start=$(now_ns)
    in_ns "$NS_VM_A" timeout $((SECONDS_PER_RUN + 30)) wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d"${SECONDS_PER_RUN}s" \
        -H 'Connection: close' "http://$VM_B_IP:$HTTP_PORT/" >"$out" 2>&1 || true
    end=$(now_ns)
    local index=0
    for pid in "$@"; do
        record_cpu "$system.cpu_conn.$index" "${before[index]}" "$pid" $((end - start))
        index=$((index + 1))
    done
    if grep -q '^Requests/sec:' "$out"; then
        RESULT[$system.conn_rate]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
        # "Socket errors: connect 0, read 3, write 0, timeout 0" and
        # "Non-2xx or 3xx responses: 5" appear only when not zero.
        RESULT[$system.conn_errors]=$(awk '
            / requests in / { requests = $1 }
            /Socket errors:/ { gsub(/,/, ""); c = $4; r = $6; w = $8; t = $10 }
            /Non-2xx or 3xx responses:/ { n = $NF }
            END { total = c + r + w + t + n
                  printf "%d of %d requests", total, requests
                  if (total > 0) printf " (connect %d, read %d, write %d, timeout %d, non-2xx %d)", c, r, w, t, n
                  printf "\n" }' "$out")
    else
        log "$system: wrk failed: $(head -c 300 "$out")"
        RESULT[$system.conn_rate]=- RESULT[$system.conn_errors]=-
    fi
}

# Agents that serve Prometheus metrics (`hive agent --metrics-listen`, when
# the binary has it): their counters are read after each test.
METRICS_URLS=()
scrape_metrics() {  # scrape_metrics SYSTEM TEST
    local index
    for index in "${!METRICS_URLS[@]}"; do
        curl -fsS --max-time 5 "${METRICS_URLS[index]}" >"$WORK/$1-$2-metrics-$index.txt" 2>/dev/null \
            || log "could not read the metrics of agent $index at ${METRICS_URLS[index]}"
    done
}

# measure SYSTEM [PIDS of its datapath processes...]
measure() {
    local system=$1; shift
    check_rig
    RESULT[$system.vm_offloads]=$(vm_offloads)
    scrape_metrics "$system" start
    log "$system: ping ($PINGS at 10 ms)"
    measure_ping "$system"
    scrape_metrics "$system" ping
    log "$system: TCP, 1 stream, ${SECONDS_PER_RUN}s"
    measure_tcp "$system" 1 "$@"
    scrape_metrics "$system" tcp1
    if [ $# -eq 2 ]; then
        # Both hosts' datapath CPU (% of a core, summed) per Gbit/s of TCP.
        RESULT[$system.cpu_per_gbit]=$(awk -v a="${RESULT[$system.cpu_tcp1.0]}" -v b="${RESULT[$system.cpu_tcp1.1]}" -v g="${RESULT[$system.tcp1]}" \
            'BEGIN { if (g == "-" || g + 0 == 0) print "-"; else printf "%.0f\n", (a + b) / g }')
    fi
    log "$system: TCP, 4 streams, ${SECONDS_PER_RUN}s"
    measure_tcp "$system" 4 "$@"
    scrape_metrics "$system" tcp4
    log "$system: UDP 64 B, ${SECONDS_PER_RUN}s"
    measure_udp "$system" "$@"
    scrape_metrics "$system" udp
    log "$system: new TCP connections (wrk -t$WRK_THREADS -c$WRK_CONNECTIONS, Connection: close), ${SECONDS_PER_RUN}s"
    measure_connections "$system" "$@"
    scrape_metrics "$system" conn
    check_rig
    log "$system: RTT ${RESULT[$system.ping_median]} us, TCP ${RESULT[$system.tcp1]} / ${RESULT[$system.tcp4]} Gbit/s, UDP ${RESULT[$system.udp_kpps]} kpps received, ${RESULT[$system.conn_rate]} connections/s (wrk errors: ${RESULT[$system.conn_errors]})"
}

# --- the C forwarder ---------------------------------------------------------

# The project's reference forwarder (shared/bench/cref): a plain Geneve L2
# pipe, no learning, no flow table: what a userspace datapath can do here.
# It is built from CFWD_SRC into the work directory; without the source (a
# clone without the shared directory) its systems are skipped and the report
# says why.
CFWD_BIN=""
CFWD_NOTE=""
CFWD_DESCRIPTION=""
CFWD_PIDS=()
prepare_cfwd() {
    if [ "$CFWD" != 1 ]; then
        CFWD_NOTE="not measured (BENCH_CFWD=0)"
        return 0
    fi
    if [ ! -f "$CFWD_SRC" ]; then
        CFWD_NOTE="not measured: its source $CFWD_SRC was not found (set CFWD_SRC to the project's shared/bench/cref/cfwd.c, or skip it on purpose with BENCH_CFWD=0)"
        log "C forwarder: $CFWD_SRC not found; its systems are skipped"
        return 0
    fi
    CFWD_BIN="$WORK/cfwd"
    log "building the C forwarder: gcc -O2 -Wall -pthread -o cfwd $CFWD_SRC"
    gcc -O2 -Wall -pthread -o "$CFWD_BIN" "$CFWD_SRC" >"$WORK/cfwd-build.log" 2>&1 \
        || die "building the C forwarder from $CFWD_SRC failed: $(head -c 500 "$WORK/cfwd-build.log")"
    CFWD_DESCRIPTION="$(cd "$(dirname "$CFWD_SRC")" && pwd)/$(basename "$CFWD_SRC") (sha256 $(sha256sum "$CFWD_SRC" | cut -c1-12)), $(gcc --version | sed -n 1p)"
}

# cfwd_up SYSTEM FLAGS...: one cfwd per host namespace on the VM's veth and
# the underlay, with CFWD_FLAGS and FLAGS; CFWD_PIDS their pids.
cfwd_up() {
    local system=$1; shift
    local side namespace veth local_address remote pid_file pids=()
    for side in a b; do
        if [ $side = a ]; then namespace=$NS_HOST_A veth=$VETH_A local_address=$UNDERLAY_A remote=$UNDERLAY_B
        else namespace=$NS_HOST_B veth=$VETH_B local_address=$UNDERLAY_B remote=$UNDERLAY_A; fi
        pid_file="$WORK/$system-cfwd-$side.pid"
        rm -f "$pid_file"
        start_process "$WORK/$system-cfwd-$side.log" ip netns exec "$namespace" "$CFWD_BIN" -i "$veth" \
            -l "$local_address" -r "$remote" "${CFWD_FLAGS[@]}" "$@" -P "$pid_file"
        pids+=("$LAST_PID")
    done
    wait_for 10 "both C forwarders to be up" test -s "$WORK/$system-cfwd-a.pid" -a -s "$WORK/$system-cfwd-b.pid"
    # ip netns exec executes cfwd in its own process: the pid is cfwd's.
    [ "$(cat "$WORK/$system-cfwd-a.pid")" = "${pids[0]}" ] && [ "$(cat "$WORK/$system-cfwd-b.pid")" = "${pids[1]}" ] \
        || die "the C forwarders' pid files ($(cat "$WORK/$system-cfwd-a.pid") $(cat "$WORK/$system-cfwd-b.pid")) are not the processes started (${pids[*]})"
    CFWD_PIDS=("${pids[@]}")
    ping_until_answered 10 || die "vmA cannot ping vmB through the C forwarder ($system)"
}

# cfwd_down SYSTEM: SIGTERM, on which each prints its counters; its socket
# drops go to the report.
cfwd_down() {
    local system=$1 pid side=a
    for pid in "${CFWD_PIDS[@]}"; do
        stop_started "$pid"
        RESULT[$system.cfwd_drops_$side]=$(sed -n 's/.*exit: .*sock drops: packet=\([0-9]*\) udp=\([0-9]*\).*/packet socket \1, UDP socket \2/p' "$WORK/$system-cfwd-$side.log" | tail -n 1)
        side=b
    done
    CFWD_PIDS=()
}

# measure_cfwd SYSTEM FLAGS...
measure_cfwd() {
    local system=$1; shift
    log "$system: cfwd ${CFWD_FLAGS[*]} $* in both hosts"
    cfwd_up "$system" "$@"
    SYSTEMS+=("$system")
    measure "$system" "${CFWD_PIDS[@]}"
    cfwd_down "$system"
}

# --- Hive --------------------------------------------------------------------

HIVE_TOKEN_VALUE="bench-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"  # hive api wants 16+ characters
hive_cli() { HIVE_ENDPOINT=$HIVE_API_URL HIVE_TOKEN=$HIVE_TOKEN_VALUE "$HIVE_BIN" "$@"; }

etcd_healthy() { curl -fsS "$ETCD_URL/health" | grep -q true; }
hosts_registered() { [ "$(hive_cli host list --json | jq 'if type == "array" then length else (.items | length) end')" -ge 2 ]; }

hive_up() {
    local client_port peer_port
    client_port=$(free_port)
    peer_port=$(free_port)
    ETCD_URL="http://127.0.0.1:$client_port"
    log "starting etcd on $ETCD_URL"
    start_process "$WORK/etcd.log" etcd --name hive-bench --data-dir "$WORK/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "hive-bench=http://127.0.0.1:$peer_port"
    wait_for 30 "etcd at $ETCD_URL" etcd_healthy

    log "starting hive api"
    start_process "$WORK/api.log" "$HIVE_BIN" api --etcd "$ETCD_URL" --admin-token "$HIVE_TOKEN_VALUE" --listen 127.0.0.1:0
    wait_for 30 "hive api to print its URL" grep -Eq 'http://127\.0\.0\.1:[0-9]+' "$WORK/api.log"
    HIVE_API_URL=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$WORK/api.log" | sed -n 1p)
    log "hive api at $HIVE_API_URL"

    mkdir -p "$WORK/agent-a" "$WORK/agent-b"
    local metrics_a=() metrics_b=() port
    if "$HIVE_BIN" agent --help 2>&1 | grep -q -- '--metrics-listen'; then
        port=$(free_port); metrics_a=(--metrics-listen "127.0.0.1:$port"); METRICS_URLS+=("http://127.0.0.1:$port/metrics")
        port=$(free_port); metrics_b=(--metrics-listen "127.0.0.1:$port"); METRICS_URLS+=("http://127.0.0.1:$port/metrics")
    fi
    if [ -n "${BENCH_UPCALLS_PER_PORT:-}" ]; then
        metrics_a+=(--upcalls-per-port "$BENCH_UPCALLS_PER_PORT"); metrics_b+=(--upcalls-per-port "$BENCH_UPCALLS_PER_PORT")
    fi
    if [ -n "${BENCH_DATAPATH_NICE:-}" ]; then
        metrics_a+=("--datapath-nice=$BENCH_DATAPATH_NICE"); metrics_b+=("--datapath-nice=$BENCH_DATAPATH_NICE")
    fi
    log "starting the agents of $NS_HOST_A and $NS_HOST_B${METRICS_URLS[0]:+ (metrics at ${METRICS_URLS[*]})}${BENCH_UPCALLS_PER_PORT:+, --upcalls-per-port $BENCH_UPCALLS_PER_PORT}${BENCH_DATAPATH_NICE:+, --datapath-nice $BENCH_DATAPATH_NICE}"
    start_process "$WORK/agent-a.log" "$HIVE_BIN" agent --name "$NS_HOST_A" --underlay $UNDERLAY_A --netns "$NS_HOST_A" \
        --tunnel-zone bench --etcd "$ETCD_URL" --state-dir "$WORK/agent-a" --host-id "$(cat /proc/sys/kernel/random/uuid)" \
        "${metrics_a[@]}"
    AGENT_A_PID=$LAST_PID
    start_process "$WORK/agent-b.log" "$HIVE_BIN" agent --name "$NS_HOST_B" --underlay $UNDERLAY_B --netns "$NS_HOST_B" \
        --tunnel-zone bench --etcd "$ETCD_URL" --state-dir "$WORK/agent-b" --host-id "$(cat /proc/sys/kernel/random/uuid)" \
        "${metrics_b[@]}"
    AGENT_B_PID=$LAST_PID
    wait_for 30 "both agents to register their hosts" hosts_registered

    log "building the virtual network: bridge bench, ports vmA and vmB, bindings"
    {
        hive_cli bridge create bench --tenant bench
        hive_cli dhcp create --bridge bench --subnet 100.65.0.0/24 --range 100.65.0.100-100.65.0.199 --tenant bench
        hive_cli port create vmA --bridge bench --mac $VM_A_MAC --address $VM_A_IP --tenant bench
        hive_cli port create vmB --bridge bench --mac $VM_B_MAC --address $VM_B_IP --tenant bench
        hive_cli binding create --host "$NS_HOST_A" --port vmA --bridge bench --interface $VETH_A
        hive_cli binding create --host "$NS_HOST_B" --port vmB --bridge bench --interface $VETH_B
    } >>"$WORK/cli.log" 2>&1 || die "building the virtual network failed (see cli.log)"
    local started=$SECONDS
    ping_until_answered 30 || die "vmA cannot ping vmB through Hive within 30 s"
    log "first answer through Hive $((SECONDS - started))s after the bindings"
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited"
}

# The traced variant: the same bridge, with a live trace armed on port vmC,
# bound on hostA to a veth that carries no traffic: hostA's agent has a trace
# armed, on a port the measurements do not use. What tracing costs the
# others (nothing, by design) shows as the difference with "hive".
hive_traced_up() {
    log "traced variant: a live trace armed on vmC (hostA), which carries no traffic"
    vm_c_up
    start_process "$WORK/trace.log" env HIVE_ENDPOINT="$HIVE_API_URL" HIVE_TOKEN="$HIVE_TOKEN_VALUE" \
        "$HIVE_BIN" trace --live --port bench/vmC --count 100 --timeout 30m
    TRACE_PID=$LAST_PID
    wait_for 30 "the live trace to be armed" grep -q '^Tracing' "$WORK/trace.log"
    wait_for 30 "hostA's agent to have the trace armed" trace_armed_on_host_a
}
trace_armed_on_host_a() {
    [ ${#METRICS_URLS[@]} -gt 0 ] || return 0
    curl -fsS "${METRICS_URLS[0]}" | grep -q '^hive_live_traces_armed{[^}]*} 1'
}
hive_traced_down() {
    # SIGINT: the CLI ends its request before it exits.
    local pids=() pid
    for pid in "${WATCHED_PIDS[@]}"; do [ "$pid" = "$TRACE_PID" ] || pids+=("$pid"); done
    WATCHED_PIDS=("${pids[@]}")
    kill -INT "$TRACE_PID" 2>/dev/null
    wait "$TRACE_PID" 2>/dev/null || true
    vm_c_down
}

# vmC: a third VM, in namespace hive-bench-vmC on hostA (veth hive-b-vmC),
# with its port vmC on bridge bench (its MAC and address, port security on)
# bound there. vm_c_up [PORT CREATE OPTIONS...]; vm_c_down deletes the port
# (and so its binding); the namespace stays for the next use.
vm_c_up() {
    namespace_exists "$NS_VM_C" || add_vm "$NS_VM_C" "$NS_HOST_A" "$VETH_C" "$VM_C_MAC" "$VM_C_IP"
    {
        hive_cli port create vmC --bridge bench --mac $VM_C_MAC --address $VM_C_IP --tenant bench "$@"
        hive_cli binding create --host "$NS_HOST_A" --port vmC --bridge bench --interface $VETH_C
    } >>"$WORK/cli.log" 2>&1 || die "creating port vmC failed (see cli.log)"
}
vm_c_down() {
    hive_cli port delete vmC --bridge bench >>"$WORK/cli.log" 2>&1 || die "deleting port vmC failed (see cli.log)"
    ip -n "$NS_VM_C" neigh flush all
}
vm_c_reaches_vm_b() { in_ns "$NS_VM_C" ping -c 1 -W 1 -q $VM_B_IP; }

# The storm: UDP datagrams (18 bytes of payload) to every port of vmB from
# 1024 up, in a random order, again and again, as fast as one process can
# send; on SIGTERM it prints how many it sent.
STORM_PROGRAM='
import random, signal, socket, sys, time
target = sys.argv[1]
ports = list(range(1024, 65536))
random.shuffle(ports)
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(18)
sent = errors = 0
started = time.monotonic()
def stop(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, stop)
try:
    while True:
        for port in ports:
            try:
                sender.sendto(payload, (target, port))
                sent += 1
            except OSError:
                errors += 1
except KeyboardInterrupt:
    pass
print("sent %d errors %d seconds %.3f" % (sent, errors, time.monotonic() - started), flush=True)
'

# metric_delta BEFORE AFTER NAME [LINE-REGEX]: how much counter NAME (summed
# over the samples whose line matches LINE-REGEX) grew between two scrapes;
# for a gauge, its value in AFTER.
metric_delta() {
    local before=$1 after=$2 name=$3 filter=${4:-.}
    [ -s "$before" ] && [ -s "$after" ] || { echo "-"; return; }
    awk -v name="$name" -v filter="$filter" '
        /^# TYPE / { if ($3 == name) gauge = ($4 == "gauge"); next }
        /^#/ { next }
        $1 ~ "^" name "({|$)" && $0 ~ filter { if (FILENAME == ARGV[1]) old += $2; else new += $2 }
        END { printf "%.0f\n", gauge ? new : new - old }' "$before" "$after"
}

# storm_window NAME: vmA's pings (RESULT[NAME.ping_*]), how long they took
# (NAME.window_ns) and the agents' CPU meanwhile (NAME.cpu.0 and .1).
storm_window() {
    local name=$1 before_a before_b wait_a wait_b started ended
    before_a=$(cpu_ticks "$AGENT_A_PID") before_b=$(cpu_ticks "$AGENT_B_PID")
    wait_a=$(run_queue_ns "$AGENT_A_PID") wait_b=$(run_queue_ns "$AGENT_B_PID")
    started=$(now_ns)
    measure_ping "$name"
    ended=$(now_ns)
    RESULT[$name.window_ns]=$((ended - started))
    record_cpu "$name.cpu.0" "$before_a" "$AGENT_A_PID" $((ended - started))
    record_cpu "$name.cpu.1" "$before_b" "$AGENT_B_PID" $((ended - started))
    RESULT[$name.wait.0]=$(( ($(run_queue_ns "$AGENT_A_PID") - wait_a) * 100 / (ended - started) ))
    RESULT[$name.wait.1]=$(( ($(run_queue_ns "$AGENT_B_PID") - wait_b) * 100 / (ended - started) ))
}
# Nanoseconds the threads of a process spent runnable but waiting for a CPU
# (the second field of /proc/PID/task/*/schedstat), summed over its threads.
run_queue_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $2 } END { printf "%.0f\n", n }'; }

# The upcall storm, on the bridge of "hive" (vmB's port in no group): vmC
# joins on hostA, its port in a security group with only a new group's rules
# (all egress allowed), so every datagram to a new port of vmB is a new
# tracked connection: a flow key no cached flow covers, an upcall. (Without
# a group, megaflows would carry the whole flood on one flow.) vmA pings vmB
# before and during the storm.
storm_test() {
    log "upcall storm: vmC (hostA, security group $STORM_GROUP) floods UDP to random ports of vmB while vmA pings vmB"
    [ -n "$PYTHON" ] || die "the upcall storm needs python3 (or BENCH_STORM=0)"
    hive_cli security-group create $STORM_GROUP --tenant bench \
        --description "bench-overlay.sh: the storm's VM, a new group's rules only (all egress)" >>"$WORK/cli.log" 2>&1 \
        || die "creating security group $STORM_GROUP failed (see cli.log)"
    vm_c_up --security-group $STORM_GROUP
    wait_for 30 "vmC to reach vmB through Hive" vm_c_reaches_vm_b
    log "storm: vmA pings vmB without the storm"
    scrape_metrics storm idle-start
    storm_window storm-idle
    scrape_metrics storm idle-end
    start_process "$WORK/storm.log" ip netns exec "$NS_VM_C" "$PYTHON" -c "$STORM_PROGRAM" "$VM_B_IP"
    local storm_pid=$LAST_PID
    sleep 1
    kill -0 "$storm_pid" 2>/dev/null || die "the storm's sender exited: $(head -c 300 "$WORK/storm.log")"
    log "storm: vmA pings vmB during the storm"
    scrape_metrics storm start
    storm_window storm-on
    scrape_metrics storm end
    stop_started "$storm_pid"
    read -r 'RESULT[storm.sent]' 'RESULT[storm.send_errors]' 'RESULT[storm.seconds]' < <(
        awk '/^sent / { print $2, $4, $6 }' "$WORK/storm.log"; echo "- - -")
    vm_c_down
    # Let the storm's flows and connections go before the next system.
    sleep 2
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited during the storm"
    log "storm: ping median ${RESULT[storm-idle.ping_median]} us without, ${RESULT[storm-on.ping_median]} us with (${RESULT[storm-on.ping_lost]} lost); vmC sent ${RESULT[storm.sent]} datagrams in ${RESULT[storm.seconds]} s"
}

# TCP to a port of vmB that the group does not open: "filtered" when nothing
# answers within a second (the security group drops the SYN), "open" when the
# SYN got through (connection refused: nothing listens there).
probe_closed_port() {
    local status=0
    in_ns "$NS_VM_A" timeout 1 bash -c "exec 3<>/dev/tcp/$VM_B_IP/81" 2>/dev/null || status=$?
    if [ $status -eq 124 ]; then echo filtered; else echo open; fi
}
security_group_in_force() { [ "$(probe_closed_port)" = filtered ]; }

# The stateful variant: vmB's port (on bridge bench, as measured just before)
# joins a security group that admits what the measurements send to vmB; vmA's
# port stays without groups. vmB's ingress is then allow-only and stateful:
# each new connection is looked up in connection tracking, and its state is
# shared between the two agents.
hive_stateful_up() {
    log "stateful variant: vmB's port in security group $SECURITY_GROUP (ingress TCP $HTTP_PORT and $IPERF_PORT, UDP $IPERF_PORT, ICMP)"
    {
        hive_cli security-group create $SECURITY_GROUP --tenant bench --description "bench-overlay.sh: what the measurements send to vmB"
        hive_cli security-group rule create --group $SECURITY_GROUP --direction ingress --protocol tcp --port $HTTP_PORT --remote 0.0.0.0/0
        hive_cli security-group rule create --group $SECURITY_GROUP --direction ingress --protocol tcp --port $IPERF_PORT --remote 0.0.0.0/0
        hive_cli security-group rule create --group $SECURITY_GROUP --direction ingress --protocol udp --port $IPERF_PORT --remote 0.0.0.0/0
        hive_cli security-group rule create --group $SECURITY_GROUP --direction ingress --protocol icmp --remote 0.0.0.0/0
        hive_cli port update vmB --bridge bench --security-group $SECURITY_GROUP
        hive_cli security-group show $SECURITY_GROUP
    } >>"$WORK/cli.log" 2>&1 || die "creating the security group failed (see cli.log)"
    local started=$SECONDS
    # In force when TCP to a port the group does not open goes unanswered.
    wait_for 30 "the security group to drop TCP to vmB's port 81" security_group_in_force
    ping_until_answered 30 || die "vmA cannot ping vmB through Hive with vmB in a security group within 30 s"
    log "security group in force and ping answered $((SECONDS - started))s after the port update"
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited"
}

# The routed variant: vmB moves to a second bridge, a router joins the two.
# The VMs keep their addresses, in two /28s: vmA 100.65.0.10/28 (gateway
# .1), vmB 100.65.0.20/28 (gateway .17).
hive_routed_up() {
    log "routed variant: bridge bench (vmA) - router edge - bridge right (vmB)"
    {
        hive_cli port delete vmB --bridge bench
        hive_cli bridge create right --tenant bench
        hive_cli dhcp create --bridge right --subnet 100.65.0.16/28 --range 100.65.0.24-100.65.0.30 --tenant bench
        hive_cli port create vmB --bridge right --mac $VM_B_MAC --address $VM_B_IP --tenant bench
        hive_cli router create edge --tenant bench
        hive_cli port create to-bench --router edge --address 100.65.0.1/28 --tenant bench
        hive_cli port create to-right --router edge --address 100.65.0.17/28 --tenant bench
        hive_cli port create uplink --bridge bench --tenant bench
        hive_cli port create uplink --bridge right --tenant bench
        hive_cli port link to-bench uplink --router edge --peer-bridge bench
        hive_cli port link to-right uplink --router edge --peer-bridge right
        hive_cli route create --router edge --destination 100.65.0.0/28 --port to-bench --tenant bench
        hive_cli route create --router edge --destination 100.65.0.16/28 --port to-right --tenant bench
        hive_cli binding create --host "$NS_HOST_B" --port vmB --bridge right --interface $VETH_B
    } >>"$WORK/cli.log" 2>&1 || die "building the routed network failed (see cli.log)"
    ip -n "$NS_VM_A" address del $VM_A_IP/24 dev eth0
    ip -n "$NS_VM_A" address add $VM_A_IP/28 dev eth0
    ip -n "$NS_VM_A" route add default via 100.65.0.1 dev eth0
    ip -n "$NS_VM_B" address del $VM_B_IP/24 dev eth0
    ip -n "$NS_VM_B" address add $VM_B_IP/28 dev eth0
    ip -n "$NS_VM_B" route add default via 100.65.0.17 dev eth0
    ip -n "$NS_VM_A" neigh flush all
    ip -n "$NS_VM_B" neigh flush all
    local started=$SECONDS
    ping_until_answered 30 || die "vmA cannot ping vmB across Hive's router within 30 s"
    log "first routed answer through Hive $((SECONDS - started))s after the change"
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited"
}

# The SNAT variant: vmB's veth is bound to an uplink of the router (an
# exterior router port) and the router's gateway is that port: vmA's
# packets leave with the router's address, as a tenant's to the internet.
hive_snat_up() {
    log "SNAT variant: bridge bench (vmA) - router edge (gateway: SNAT) - uplink = vmB"
    {
        hive_cli port delete vmB --bridge right
        hive_cli port unlink to-right --router edge
        hive_cli port delete to-right --router edge
        hive_cli port create outside --router edge --address 100.65.0.17/28 --tenant bench
        hive_cli route create --router edge --destination 100.65.0.16/28 --port outside --tenant bench
        hive_cli router update edge --gateway-port outside
        hive_cli binding create --host "$NS_HOST_B" --port outside --router edge --interface $VETH_B
    } >>"$WORK/cli.log" 2>&1 || die "building the SNAT network failed (see cli.log)"
    ip -n "$NS_VM_A" neigh flush all
    ip -n "$NS_VM_B" neigh flush all
    local started=$SECONDS
    ping_until_answered 30 || die "vmA cannot ping vmB through Hive's SNAT within 30 s"
    log "first answer through SNAT $((SECONDS - started))s after the change"
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited"
}

# --- report ------------------------------------------------------------------

# The systems measured, in column order, and their column headings.
SYSTEMS=(linux-on)
declare -A HEADING=([linux-on]="Linux bridge + vxlan, offloads on" [linux-txoff]="Linux bridge + vxlan, tx-off"
    [cfwd-simple]="C forwarder, simple (tx-off)" [cfwd-offload]="C forwarder, offload"
    [cfwd-split]="C forwarder, offload, underlay splits to wire size"
    [hive]="Hive bridge" [hive-split]="Hive bridge, underlay splits to wire size"
    [hive-traced]="Hive bridge, trace armed on another port" [hive-stateful]="Hive bridge + security group"
    [hive-routed]="Hive bridge - router - bridge" [hive-snat]="Hive bridge - router with SNAT - uplink")

# The ratio columns, "SYSTEM:BASELINE", shown when both were measured: Hive's
# main system against the userspace limit and against the kernel, and the
# split underlay against the C forwarder on the same underlay.
RATIOS=(hive:cfwd-offload hive:linux-on hive-split:cfwd-split)
declare -A SHORT_HEADING=([linux-on]="Linux offloads on" [cfwd-offload]="C forwarder offload"
    [cfwd-split]="C forwarder split" [hive]="Hive bridge" [hive-split]="Hive split")

measured() { local system; for system in "${SYSTEMS[@]}"; do [ "$system" = "$1" ] && return 0; done; return 1; }
shown_ratios() {
    local pair
    for pair in "${RATIOS[@]}"; do measured "${pair%%:*}" && measured "${pair#*:}" && echo "$pair"; done
    return 0
}

value() { echo "${RESULT[$1]:--}"; }

ratio() {  # ratio VALUE BASELINE
    awk -v h="$1" -v l="$2" 'BEGIN { if (h == "-" || l == "-" || l + 0 == 0) print "-"; else printf "%.2f\n", h / l }'
}

row() {  # row LABEL KEY [none]: one cell per system, then the ratio columns
    local label=$1 key=$2 with_ratio=${3:-ratio} line system pair
    line="| $label |"
    for system in "${SYSTEMS[@]}"; do line+=" $(value "$system.$key") |"; done
    for pair in $(shown_ratios); do
        if [ "$with_ratio" = ratio ]; then line+=" $(ratio "$(value "${pair%%:*}.$key")" "$(value "${pair#*:}.$key")") |"; else line+=" - |"; fi
    done
    echo "$line"
}

cpu_cell() { echo "$(value "$1") (user $(value "$1_user"), sys $(value "$1_sys"))"; }

cpu_row() {  # cpu_row LABEL KEY
    local line="| $1 |" system pair
    for system in "${SYSTEMS[@]}"; do
        case $system in
            hive* | cfwd*) line+=" $(cpu_cell "$system.$2.0") / $(cpu_cell "$system.$2.1") |" ;;
            *) line+=" in kernel |" ;;
        esac
    done
    for pair in $(shown_ratios); do line+=" - |"; done
    echo "$line"
}

# UDP 64 B lost between the datapath's two ends during SYSTEM's UDP test, in
# %: frames from vmA that hostA's agent read or the kernel dropped on its
# packet socket, against the frames hostB's agent wrote to vmB.
datapath_udp_loss() {
    local system=$1 offered delivered
    local before_a="$WORK/$system-tcp4-metrics-0.txt" after_a="$WORK/$system-udp-metrics-0.txt"
    local before_b="$WORK/$system-tcp4-metrics-1.txt" after_b="$WORK/$system-udp-metrics-1.txt"
    offered=$(( $(metric_delta "$before_a" "$after_a" hive_port_received_packets_total "interface=\"$VETH_A\"" | sed 's/^-$/0/') \
        + $(metric_delta "$before_a" "$after_a" hive_port_kernel_drops_total "interface=\"$VETH_A\"" | sed 's/^-$/0/') ))
    delivered=$(metric_delta "$before_b" "$after_b" hive_port_sent_packets_total "interface=\"$VETH_B\"")
    if [ "$offered" -le 0 ] || [ "$delivered" = - ]; then echo "-"; return; fi
    awk -v o="$offered" -v d="$delivered" 'BEGIN { l = (o - d) / o * 100; if (l < 0) l = 0; printf "%.1f\n", l }'
}

# goal LABEL FIGURES STATUS: one row of the goals table; STATUS is "met",
# "not met" or "not measured".
goal() { echo "| $1 | $2 | $([ "$3" = met ] && echo met || echo "**$3**") |"; }
# check EXPRESSION VALUES...: awk's verdict on x[1]..x[n], "not measured" when one is "-".
check() {
    local expression=$1; shift
    awk -v e="$*" 'BEGIN { n = split(e, x, " "); for (i = 1; i <= n; i++) { if (x[i] == "-") { print "not measured"; exit }; x[i] += 0 }
        verdict = ('"$expression"') ? "met" : "not met"; print verdict }'
}
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.0f%%\n", a / b * 100 }'; }

goals_report() {
    local tcp cfwd split cfwd_split ping udp udp_loss conn linux cpu cpu_cfwd idle storm lost
    tcp=$(value hive.tcp1) cfwd=$(value cfwd-offload.tcp1)
    split=$(value hive-split.tcp1) cfwd_split=$(value cfwd-split.tcp1)
    ping=$(value hive.ping_median)
    udp=$(value hive.udp_kpps) udp_loss=$(datapath_udp_loss hive)
    conn=$(value hive.conn_rate) linux=$(value linux-on.conn_rate)
    cpu=$(value hive.cpu_per_gbit) cpu_cfwd=$(value cfwd-offload.cpu_per_gbit)
    idle=$(value storm-idle.ping_median) storm=$(value storm-on.ping_median) lost=$(value storm-on.ping_lost)
    echo
    echo "### Goals (issue 12), from this run"
    echo
    echo "| goal | this run | |"
    echo "|---|---|---|"
    goal "TCP 1 stream >= 85% of the C forwarder's (offload)" "$tcp / $cfwd Gbit/s = $(percent "$tcp" "$cfwd")" \
        "$(check 'x[1] >= 0.85 * x[2]' "$tcp" "$cfwd")"
    goal "the same with the underlay splitting datagrams: >= 85% of the C forwarder's (split)" \
        "$split / $cfwd_split Gbit/s = $(percent "$split" "$cfwd_split")" "$(check 'x[1] >= 0.85 * x[2]' "$split" "$cfwd_split")"
    goal "ping RTT median <= 250 us" "$ping us" "$(check 'x[1] <= 250' "$ping")"
    goal "UDP 64 B: >= 100 kpps received, < 1% lost at the datapath" "$udp kpps received, $udp_loss% lost between the agents' ports" \
        "$(check 'x[1] >= 100 && x[2] < 1' "$udp" "$udp_loss")"
    goal "new TCP connections/s >= 95% of Linux bridge + vxlan (offloads on)" "$conn / $linux = $(percent "$conn" "$linux")" \
        "$(check 'x[1] >= 0.95 * x[2]' "$conn" "$linux")"
    goal "datapath CPU per Gbit/s (TCP 1 stream, % of a core of both hosts summed / Gbit/s) <= 1.2 x the C forwarder's (offload)" \
        "$cpu / $cpu_cfwd = $(ratio "$cpu" "$cpu_cfwd") x" "$(check 'x[1] <= 1.2 * x[2]' "$cpu" "$cpu_cfwd")"
    goal "under an upcall storm from another VM of hostA: vmA's ping median <= 2 x without, no ping lost" \
        "$storm us with / $idle us without = $(ratio "$storm" "$idle") x, $lost lost" \
        "$(check 'x[1] <= 2 * x[2] && x[3] == 0' "$storm" "$idle" "$lost")"
    echo
    echo "Loss at the datapath: 1 - (frames hostB's agent wrote to vmB) / (frames from vmA that hostA's agent read or its kernel socket dropped) during the UDP test. Ratios are of figures of this run only."
}

storm_report() {
    local window before_a after_a before_b after_b upcalls rate
    echo
    echo "### Upcall storm"
    echo
    if [ -z "${RESULT[storm-on.ping_lost]:-}" ]; then
        echo "Not measured${FAILURE:+ (the run failed before it)}$([ "$STORM" = 1 ] || echo " (BENCH_STORM=0)")."
        return 0
    fi
    window=$(awk -v ns="${RESULT[storm-on.window_ns]}" 'BEGIN { printf "%.1f", ns / 1e9 }')
    before_a="$WORK/storm-start-metrics-0.txt" after_a="$WORK/storm-end-metrics-0.txt"
    before_b="$WORK/storm-start-metrics-1.txt" after_b="$WORK/storm-end-metrics-1.txt"
    upcalls=$(metric_delta "$before_a" "$after_a" hive_upcalls_total)
    rate=$(awk -v u="$upcalls" -v s="$window" 'BEGIN { if (u == "-" || s + 0 == 0) print "-"; else printf "%.0f", u / s }')
    echo "On the bridge of \"Hive bridge\", vmC ($VM_C_IP, a third VM on hostA; its port in security group $STORM_GROUP, which has a new group's rules only: all egress, so every datagram to a new port of vmB is a new tracked connection and a new flow) sent UDP datagrams (18 B) to vmB's ports 1024-65535 in random order from one python3 process, as fast as it could: ${RESULT[storm.sent]} datagrams in ${RESULT[storm.seconds]} s ($(awk -v n="${RESULT[storm.sent]}" -v s="${RESULT[storm.seconds]}" 'BEGIN { if (s + 0 == 0) print "-"; else printf "%.1f", n / s / 1000 }') kpps), while vmA pinged vmB ($PINGS pings at 10 ms, before the storm and during it). During the ${window} s of pings under the storm:"
    echo "- hostA's agent read $(metric_delta "$before_a" "$after_a" hive_port_received_packets_total "interface=\"$VETH_C\"") frames from vmC (the kernel dropped $(metric_delta "$before_a" "$after_a" hive_port_kernel_drops_total "interface=\"$VETH_C\"") more on its socket, queue full), made $upcalls upcalls ($rate/s), dropped $(metric_delta "$before_a" "$after_a" hive_datapath_drops_total 'reason="upcall_limited"') packets at the per-port upcall limit (upcall_limited), created $(metric_delta "$before_a" "$after_a" hive_conntrack_created_total) connections and sent $(metric_delta "$before_a" "$after_a" hive_tunnel_sent_packets_total) tunnel packets; $(metric_delta "$before_a" "$after_a" hive_flows) flows at the end."
    echo "- hostB's agent made $(metric_delta "$before_b" "$after_b" hive_upcalls_total) upcalls, dropped $(metric_delta "$before_b" "$after_b" hive_datapath_drops_total 'reason="upcall_limited"') at the upcall limit, received $(metric_delta "$before_b" "$after_b" hive_tunnel_received_packets_total) tunnel packets and wrote $(metric_delta "$before_b" "$after_b" hive_port_sent_packets_total "interface=\"$VETH_B\"") frames to vmB."
    echo
    echo "| vmA to vmB ping | without the storm | with the storm |"
    echo "|---|---|---|"
    echo "| RTT median (us) | $(value storm-idle.ping_median) | $(value storm-on.ping_median) |"
    echo "| RTT p99 (us) | $(value storm-idle.ping_p99) | $(value storm-on.ping_p99) |"
    echo "| lost (of $PINGS) | $(value storm-idle.ping_lost) | $(value storm-on.ping_lost) |"
    echo "| agents' CPU meanwhile (% of a core, hostA / hostB) | $(cpu_cell storm-idle.cpu.0) / $(cpu_cell storm-idle.cpu.1) | $(cpu_cell storm-on.cpu.0) / $(cpu_cell storm-on.cpu.1) |"
    echo "| agents' threads waiting for a CPU meanwhile (% of the time, summed over threads, hostA / hostB) | $(value storm-idle.wait.0) / $(value storm-idle.wait.1) | $(value storm-on.wait.0) / $(value storm-on.wait.1) |"
    echo
    echo "Time waiting for a CPU is from /proc/PID/task/*/schedstat: when it is large, the machine's other load (the storm's sender among it), not the agent's own work, delays the agent."
}

report() {
    local cpu_model kernel load system header separator pair with_cpu=0
    cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
    kernel=$(uname -sr)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    local probe_note=""
    if [ -n "${RESULT[hive-stateful.probe]:-}" ]; then
        probe_note=" (after its measurements, TCP from vmA to vmB's port 81, which the group does not open, was ${RESULT[hive-stateful.probe]}; expected: filtered)"
    fi
    local cfwd_line
    if [ -n "$CFWD_BIN" ]; then
        cfwd_line="- C forwarder: \`cfwd\` built with \`gcc -O2 -Wall -pthread\` from $CFWD_DESCRIPTION; one per host namespace on the VM's veth and the underlay (\`-m poll -B 4194304\`: one poll loop, 4 MB socket buffers), plain Geneve (VNI 100, UDP 6081), no MAC learning, no flow table, no policy. Simple: AF_PACKET + recvmmsg/sendmmsg, \`-b 64\`, VMs tx-off. Offload: \`-O -b 32\` (PACKET_VNET_HDR, UDP GSO, UDP GRO with TCP segments re-coalesced for the VM), the VMs' default offloads."
    else
        cfwd_line="- C forwarder: $CFWD_NOTE."
    fi
    header="| metric |"
    separator="|---|"
    for system in "${SYSTEMS[@]}"; do
        header+=" ${HEADING[$system]} |"; separator+="---|"
        case $system in hive* | cfwd*) with_cpu=1 ;; esac
    done
    for pair in $(shown_ratios); do
        header+=" ${SHORT_HEADING[${pair%%:*}]} / ${SHORT_HEADING[${pair#*:}]} |"; separator+="---|"
    done
    cat <<EOF_REPORT
## VM to VM across two hosts: Linux bridge + kernel vxlan, the C reference forwarder and Hive

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $kernel; $cpu_model, $(nproc) cores; load average at start $LOAD_AT_START, at end $load
- versions: hive ${HIVE_DESCRIPTION:-not run}; $(iperf3 --version | sed -n 1p); $(wrk -v 2>&1 | sed -n '1s/ Copyright.*//p'); $(nginx -v 2>&1 | sed -n 's/^nginx version: //p')${ETCD_VERSION:+; $ETCD_VERSION}
- command: \`$COMMAND_LINE\` (iperf3 and wrk runs of ${SECONDS_PER_RUN} s, $PINGS pings at 10 ms)
- rig: vmA $VM_A_IP and vmB $VM_B_IP (MTU $VM_MTU) in VM namespaces, veth to host namespaces with underlays $UNDERLAY_A/24 and $UNDERLAY_B/24 (veth, MTU $UNDERLAY_MTU) on a Linux bridge in an underlay namespace. Order: Linux, C forwarder, Hive.
- tx-off: \`ethtool -K eth0 tx off\` in both VMs (and on the host ends), so the VM stacks send MTU-sized frames with full checksums: Linux tx-off and the simple C forwarder. Every other system runs with veth's default offloads (checksum offload, TSO), Hive included (its datapath takes super-frames and partial checksums with their virtio-net headers and sends with UDP GSO, receives with UDP GRO); the row "VMs' offloads" shows the state each was measured in.
- underlay splits to wire size: \`ethtool -K $UPLINK ${SPLIT_FEATURES[*]}\` in both hosts (what a NIC without UDP segmentation offload does), veth's defaults restored after.
$cfwd_line
- Linux: in each host a bridge with the VM's veth and a vxlan device (VNI 42, dstport 4789, remote = the other host), VMs in one /24. Hive: one \`hive agent\` per host (Geneve on UDP 6081), etcd and \`hive api\` on loopback; bridge: one bridge with port vmA bound on hostA and vmB on hostB, VMs in one /24; stateful: the bridge with vmB's port in security group $SECURITY_GROUP (ingress TCP $HTTP_PORT and $IPERF_PORT, UDP $IPERF_PORT and ICMP from 0.0.0.0/0; vmA's port in no group), so vmB's ingress is stateful and allow-only$probe_note; routed: vmB's port on a second bridge (a new port, in no group), a router between the two, VMs in two /28s with the router as gateway; SNAT: vmB's veth bound to an exterior port of that router (100.65.0.17/28, an uplink) which is the router's gateway, so vmA's connections leave translated to 100.65.0.17 with ports from the host's leased blocks, and vmB (the outside) sees only that address.
- connections: nginx (1 worker, \`return 200\`) in vmB; \`wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${SECONDS_PER_RUN}s -H 'Connection: close'\` in vmA, so each request is a new TCP connection (handshake, request, answer, close) and requests/s = connections/s.

$header
$separator
EOF_REPORT
    row "VMs' offloads (vmA's eth0: tx checksum / TCP segmentation)" vm_offloads none
    row "ping RTT median (us)" ping_median
    row "ping RTT p99 (us)" ping_p99
    row "pings lost (of $PINGS)" ping_lost none
    row "TCP 1 stream (Gbit/s)" tcp1
    row "TCP 1 stream, retransmits" tcp1_retransmits none
    row "TCP 4 streams (Gbit/s)" tcp4
    row "TCP 4 streams, retransmits" tcp4_retransmits none
    row "UDP 64 B received (kpps)" udp_kpps
    row "UDP 64 B sent (kpps)" udp_sent_kpps
    row "UDP 64 B lost (%)" udp_loss none
    row "new TCP connections/s (wrk, Connection: close)" conn_rate
    row "wrk errors (socket errors, non-2xx answers)" conn_errors none
    if [ $with_cpu = 1 ]; then
        cpu_row "datapath CPU, TCP 1 stream (% of a core, hostA / hostB)" cpu_tcp1
        row "datapath CPU per Gbit/s, TCP 1 stream (% of a core, both hosts)" cpu_per_gbit
        cpu_row "datapath CPU, UDP 64 B (% of a core, hostA / hostB)" cpu_udp
        cpu_row "datapath CPU, new connections (% of a core, hostA / hostB)" cpu_conn
        echo
        echo "Datapath CPU is utime + stime of each datapath process (\`cfwd\`, \`hive agent\`: all its threads) from /proc/PID/stat over the iperf3 or wrk run, as a percentage of one core; sys includes the kernel work done in its system calls (packet socket and UDP sends, and what the kernel runs in their context). Linux's datapath runs in softirq context, charged to no process."
    fi
    local cfwd_drops=""
    for system in cfwd-simple cfwd-offload cfwd-split; do
        [ -n "${RESULT[$system.cfwd_drops_a]:-}" ] || continue
        cfwd_drops+="${cfwd_drops:+; }${HEADING[$system]}: hostA ${RESULT[$system.cfwd_drops_a]}, hostB $(value "$system.cfwd_drops_b")"
    done
    if [ -n "$cfwd_drops" ]; then
        echo
        echo "The C forwarder's socket drops over each of its systems (its counters on exit): $cfwd_drops."
    fi
    if measured hive; then
        goals_report
        storm_report
    fi
    [ ${#METRICS_URLS[@]} -gt 0 ] && metrics_report
    return 0
}

# metric_change SYSTEM TEST AGENT-INDEX NAME: how much counter NAME (summed
# over its labels) grew during TEST, from the scrapes before and after it.
metric_change() {
    local system=$1 test=$2 index=$3 name=$4 previous
    case $test in ping) previous=start ;; tcp1) previous=ping ;; tcp4) previous=tcp1 ;; udp) previous=tcp4 ;; conn) previous=udp ;; esac
    local before="$WORK/$system-$previous-metrics-$index.txt" after="$WORK/$system-$test-metrics-$index.txt"
    [ -s "$before" ] && [ -s "$after" ] || { echo "-"; return; }
    awk -v name="$name" '$1 ~ "^" name "({|$)" { if (FILENAME == ARGV[1]) old += $2; else new += $2 }
        END { printf "%d\n", new - old }' "$before" "$after"
}

# The agents' counters that changed during each Hive test (hive_ prefix,
# _total, the host and port_key labels and byte counters left out; gauges as
# their value at the end of the test).
metrics_report() {
    local system test previous index host
    echo
    echo "### Where the small UDP packets went"
    for system in "${SYSTEMS[@]}"; do
        case $system in hive*) ;; *) continue ;; esac
        local json="$WORK/$system-udp64.json" sent received
        sent=$(jq -r '.end.sum_sent.packets // "-"' "$json" 2>/dev/null || echo -)
        received=$(value "$system.udp_received")
        echo "- $system: vmA's iperf3 sent $sent datagrams; hostA's agent read $(metric_change "$system" udp 0 hive_port_received_packets_total) from vmA's interface and sent $(metric_change "$system" udp 0 hive_tunnel_sent_packets_total) into the tunnel; hostB's agent received $(metric_change "$system" udp 1 hive_tunnel_received_packets_total) from the tunnel and wrote $(metric_change "$system" udp 1 hive_port_sent_packets_total) to vmB's interface; vmB's iperf3 received $received."
    done
    echo
    echo "### Agent counters during each Hive test (changes; gauges at the end)"
    for system in "${SYSTEMS[@]}"; do
        case $system in hive*) ;; *) continue ;; esac
        previous=start
        for test in ping tcp1 tcp4 udp conn; do
            for index in "${!METRICS_URLS[@]}"; do
                host=$([ "$index" = 0 ] && echo hostA || echo hostB)
                local before="$WORK/$system-$previous-metrics-$index.txt" after="$WORK/$system-$test-metrics-$index.txt"
                [ -s "$before" ] && [ -s "$after" ] || continue
                echo "- $system $test, $host: $(awk '
                    /^# TYPE / { type[$3] = $4; next }
                    /^#/ || NF < 2 { next }
                    $1 ~ /_bytes_total/ { next }
                    { key = $1; sub(/host="[^"]*",?/, "", key); sub(/port_key="[^"]*",?/, "", key)
                      sub(/\{\}$/, "", key); sub(/^hive_/, "", key); sub(/_total/, "", key)
                      name = $1; sub(/\{.*/, "", name)
                      if (FILENAME == ARGV[1]) { old[key] = $2; next }
                      if (type[name] == "gauge") { if ($2 != 0) out = out sprintf("%s %s, ", key, $2) }
                      else if ($2 - old[key] != 0) out = out sprintf("%s +%d, ", key, $2 - old[key]) }
                    END { sub(/, $/, "", out); print (out == "" ? "no change" : out) }' "$before" "$after")"
            done
            previous=$test
        done
    done
}

# --- the run -----------------------------------------------------------------

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$LINUX_ONLY" != 1 ]; then
    HIVE_DESCRIPTION="$HIVE_BIN"
    ETCD_VERSION=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: /etcd /p')
    # The sources of the work tree the binary sits in (another worktree, say),
    # else this script's.
    source_tree=$(git -C "$(dirname "$HIVE_BIN")" rev-parse --show-toplevel 2>/dev/null || echo "$ROOT")
    commit=$(git -C "$source_tree" rev-parse --short HEAD 2>/dev/null || true)
    if [ -n "$commit" ]; then
        if [ -n "$(git -C "$source_tree" status --porcelain -- Sources Package.swift 2>/dev/null)" ]; then commit="$commit + uncommitted changes"; else commit="$commit, clean"; fi
        HIVE_DESCRIPTION="$HIVE_DESCRIPTION (sources at run time in $source_tree: $commit)"
    fi
fi

prepare_cfwd
build_rig
start_iperf_server
start_http_server

log "Linux bridge + vxlan, offloads on"
linux_overlay_up
ping_until_answered 10 || die "vmA cannot ping vmB through the Linux bridge + vxlan"
measure linux-on

log "Linux bridge + vxlan, tx-off"
set_tx_offload off
SYSTEMS+=(linux-txoff)
measure linux-txoff

log "removing the Linux bridges and vxlans"
linux_overlay_down
if [ -n "$CFWD_BIN" ]; then
    # The VMs are still tx-off: the simple forwarder's condition.
    measure_cfwd cfwd-simple -b 64
    set_tx_offload on
    measure_cfwd cfwd-offload -O -b 32
    if [ "$SPLIT" = 1 ]; then
        set_underlay_split on
        measure_cfwd cfwd-split -O -b 32
        set_underlay_split off
    fi
fi
set_tx_offload on

if [ "$LINUX_ONLY" != 1 ]; then
    log "starting Hive (the VMs' default offloads)"
    hive_up
    SYSTEMS+=(hive)
    measure hive "$AGENT_A_PID" "$AGENT_B_PID"
    if [ "$SPLIT" = 1 ]; then
        log "hive-split: the underlay splits datagrams to wire size (ethtool -K $UPLINK ${SPLIT_FEATURES[*]} in both hosts)"
        set_underlay_split on
        SYSTEMS+=(hive-split)
        measure hive-split "$AGENT_A_PID" "$AGENT_B_PID"
        set_underlay_split off
    fi
    if [ "$TRACED" = 1 ]; then
        hive_traced_up
        SYSTEMS+=(hive-traced)
        measure hive-traced "$AGENT_A_PID" "$AGENT_B_PID"
        hive_traced_down
    fi
    if [ "$STORM" = 1 ]; then storm_test; fi
    if [ "$STATEFUL" = 1 ]; then
        hive_stateful_up
        SYSTEMS+=(hive-stateful)
        measure hive-stateful "$AGENT_A_PID" "$AGENT_B_PID"
        RESULT[hive-stateful.probe]=$(probe_closed_port)
    fi
    if [ "$ROUTED" = 1 ]; then
        hive_routed_up
        SYSTEMS+=(hive-routed)
        measure hive-routed "$AGENT_A_PID" "$AGENT_B_PID"
        if [ "$SNAT" = 1 ]; then
            hive_snat_up
            SYSTEMS+=(hive-snat)
            measure hive-snat "$AGENT_A_PID" "$AGENT_B_PID"
        fi
    fi
    kill -0 "$AGENT_A_PID" && kill -0 "$AGENT_B_PID" || die "an agent exited during the measurements"
    if grep -Eiq 'error|critical' "$WORK/agent-a.log" "$WORK/agent-b.log"; then
        log "the agents logged errors:"
        grep -Eih 'error|critical' "$WORK/agent-a.log" "$WORK/agent-b.log" | sed -n 1,20p >&2
    fi
fi

report
REPORTED=1
