#!/usr/bin/env bash
# Whole-system benchmark: VM to VM across two hosts, first through Linux's own
# bridge + kernel vxlan (the baseline), then through Hive, on the same
# namespaces and veths in one run (the rig of shared/ANCHORS.md):
#
#  ns vmA               ns hostA                      ns hostB               ns vmB
#  eth0 100.65.0.10 -- hive-b-vmA [datapath] ul0 == ul0 [datapath] hive-b-vmB -- eth0 100.65.0.20
#  MTU 1400              underlay 100.64.0.1/24 (veth, MTU 1500)  100.64.0.2/24     MTU 1400
#                        (ul0 is hive-b-ul0; the two meet on a bridge in ns hive-bench-ul)
#
# Datapaths, in this order:
#   1. Linux, offloads on: in each host a bridge with the VM's host-side veth
#      and a vxlan device (VNI 42, dstport 4789, remote = the other host).
#   2. Linux, tx-off: the same after `ethtool -K eth0 tx off` in both VMs
#      (and on the host ends), so the VM stacks send MTU-sized frames.
#   3. Hive: offloads back on (the VMs' defaults), the Linux bridges and
#      vxlans removed; etcd, `hive api` and one `hive agent` per host started;
#      one bridge with vmA bound on hostA and vmB on hostB, built with the CLI.
#      Hive's datapath takes super-frames and partial checksums with their
#      virtio-net headers, so the fair baseline is 1 (offloads on).
#   4. Hive stateful: the bridge of 3 with vmB's port in a security
#      group (ingress TCP 80 and the iperf3 port, UDP on the iperf3 port,
#      ICMP, from anywhere); vmA's port has no group. Every connection to vmB
#      goes through connection tracking and the agents' flow-state sharing.
#   5. Hive routed: vmB's port moved to a second bridge (a new port,
#      without the group), a router between the two; the VMs keep their
#      addresses, in two /28s.
#   6. Hive SNAT: vmB becomes "the outside": its veth is bound to an
#      exterior port of the router (an uplink, 100.65.0.17/28) instead of a
#      bridge port, and the router's gateway is that port, so every packet
#      from vmA is source-translated to 100.65.0.17 (SNAT ports leased per
#      host) and every reply translated back: the edge of issue 11.
# Each: ping RTT (median, p99), iperf3 TCP 1 and 4 streams, iperf3 UDP 64 B
# (packets received per second, loss), new TCP connections per second (wrk
# with `Connection: close` against nginx in vmB, one connection per request),
# and for Hive the CPU of each agent.
#
# Usage (root):  scripts/bench-overlay.sh
#   HIVE_BIN=path     the hive binary (default: build it in release into .build-release)
#   BENCH_SECONDS=N   seconds per iperf3 and wrk run (default 10)
#   BENCH_QUICK=1     smoke run: 2 s iperf3 and wrk runs, 100 pings
#   BENCH_STATEFUL=0  skip Hive's stateful variant (vmB's port in a security group)
#   BENCH_ROUTED=0    skip Hive's routed variant (vmB behind a router on a second bridge)
#   BENCH_SNAT=0      skip Hive's SNAT variant (needs the routed one)
#   BENCH_TRACED=0    skip Hive's traced variant (the bridge again, a live trace armed on another port of hostA)
#   BENCH_LINUX_ONLY=1  measure only the Linux baseline (no hive binary needed)
#   BENCH_LOG_DIR=dir keep the logs (etcd, api, agents, nginx, iperf3 JSON, wrk output) there
# The Markdown report goes to stdout, progress to stderr. Everything the
# script creates (namespaces hive-bench-*, interfaces hive-b-* inside them)
# and every process it starts is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
for variable in BENCH_LOG_DIR BENCH_LINUX_ONLY BENCH_QUICK BENCH_ROUTED BENCH_SECONDS BENCH_SNAT BENCH_STATEFUL BENCH_TRACED HIVE_BIN; do
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

# Names. Namespaces start with hive-bench- ("bench" is not hex, so no test's
# random hive-XXXX- prefix matches it); interfaces with hive-b- (15 bytes max).
NS_UNDERLAY=hive-bench-ul
NS_HOST_A=hive-bench-hA
NS_HOST_B=hive-bench-hB
NS_VM_A=hive-bench-vmA
NS_VM_B=hive-bench-vmB
NAMESPACES=("$NS_UNDERLAY" "$NS_HOST_A" "$NS_HOST_B" "$NS_VM_A" "$NS_VM_B")
UNDERLAY_BRIDGE=hive-b-ul
UPLINK=hive-b-ul0
VETH_A=hive-b-vmA
VETH_B=hive-b-vmB
LINUX_BRIDGE=hive-b-br
VXLAN=hive-b-vx42
UNDERLAY_A=100.64.0.1
UNDERLAY_B=100.64.0.2
VM_A_IP=100.65.0.10
VM_B_IP=100.65.0.20
VM_A_MAC=02:00:64:41:00:0a
VM_B_MAC=02:00:64:41:00:14
VM_MTU=1400
UNDERLAY_MTU=1500
IPERF_PORT=5201
HTTP_PORT=80
# wrk's load for the connection rate: the same for every system.
WRK_THREADS=1
WRK_CONNECTIONS=32
SECURITY_GROUP=bench-sg

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
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
}
install_tools

for namespace in "${NAMESPACES[@]}"; do
    if namespace_exists "$namespace"; then
        die "namespace $namespace already exists (another run, or one that was killed with SIGKILL); remove it with: ip netns delete $namespace"
    fi
done

if [ -n "${BENCH_LOG_DIR:-}" ]; then
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
    scrape_metrics "$system" start
    log "$system: ping ($PINGS at 10 ms)"
    measure_ping "$system"
    scrape_metrics "$system" ping
    log "$system: TCP, 1 stream, ${SECONDS_PER_RUN}s"
    measure_tcp "$system" 1 "$@"
    scrape_metrics "$system" tcp1
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
    log "starting the agents of $NS_HOST_A and $NS_HOST_B${METRICS_URLS[0]:+ (metrics at ${METRICS_URLS[*]})}"
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
    ip -n "$NS_HOST_A" link add name hive-b-vmC type veth peer name hive-b-vmC-p
    ip -n "$NS_HOST_A" link set dev hive-b-vmC addrgenmode none
    ip -n "$NS_HOST_A" link set dev hive-b-vmC up
    ip -n "$NS_HOST_A" link set dev hive-b-vmC-p up
    {
        hive_cli port create vmC --bridge bench --tenant bench
        hive_cli binding create --host "$NS_HOST_A" --port vmC --bridge bench --interface hive-b-vmC
    } >>"$WORK/cli.log" 2>&1 || die "creating port vmC failed (see cli.log)"
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
    # Deleting the port deletes its binding.
    hive_cli port delete vmC --bridge bench >>"$WORK/cli.log" 2>&1 || die "deleting port vmC failed (see cli.log)"
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
    [hive]="Hive bridge" [hive-traced]="Hive bridge, trace armed on another port" [hive-stateful]="Hive bridge + security group"
    [hive-routed]="Hive bridge - router - bridge" [hive-snat]="Hive bridge - router with SNAT - uplink")

value() { echo "${RESULT[$1]:--}"; }

ratio() {  # ratio HIVE LINUX
    awk -v h="$1" -v l="$2" 'BEGIN { if (h == "-" || l == "-" || l + 0 == 0) print "-"; else printf "%.2f\n", h / l }'
}

row() {  # row LABEL KEY [none]: one cell per system, then Hive / Linux offloads on per Hive system
    local label=$1 key=$2 with_ratio=${3:-ratio} line system
    line="| $label |"
    for system in "${SYSTEMS[@]}"; do line+=" $(value "$system.$key") |"; done
    for system in "${SYSTEMS[@]}"; do
        case $system in hive*) ;; *) continue ;; esac
        if [ "$with_ratio" = ratio ]; then line+=" $(ratio "$(value "$system.$key")" "$(value "linux-on.$key")") |"; else line+=" - |"; fi
    done
    echo "$line"
}

cpu_cell() { echo "$(value "$1") (user $(value "$1_user"), sys $(value "$1_sys"))"; }

cpu_row() {  # cpu_row LABEL KEY
    local line="| $1 |" system
    for system in "${SYSTEMS[@]}"; do
        case $system in
            hive*) line+=" $(cpu_cell "$system.$2.0") / $(cpu_cell "$system.$2.1") |" ;;
            *) line+=" in kernel |" ;;
        esac
    done
    for system in "${SYSTEMS[@]}"; do case $system in hive*) line+=" - |" ;; esac; done
    echo "$line"
}

report() {
    local cpu_model kernel load system header separator
    cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
    kernel=$(uname -sr)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    local probe_note=""
    if [ -n "${RESULT[hive-stateful.probe]:-}" ]; then
        probe_note=" (after its measurements, TCP from vmA to vmB's port 81, which the group does not open, was ${RESULT[hive-stateful.probe]}; expected: filtered)"
    fi
    header="| metric |"
    separator="|---|"
    for system in "${SYSTEMS[@]}"; do header+=" ${HEADING[$system]} |"; separator+="---|"; done
    for system in "${SYSTEMS[@]}"; do
        case $system in hive*) header+=" ${HEADING[$system]} / Linux offloads on |"; separator+="---|" ;; esac
    done
    cat <<EOF
## VM to VM across two hosts: Linux bridge + kernel vxlan vs Hive

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $kernel; $cpu_model, $(nproc) cores; load average at start $LOAD_AT_START, at end $load
- versions: hive ${HIVE_DESCRIPTION:-not run}; $(iperf3 --version | sed -n 1p); $(wrk -v 2>&1 | sed -n '1s/ Copyright.*//p'); $(nginx -v 2>&1 | sed -n 's/^nginx version: //p')${ETCD_VERSION:+; $ETCD_VERSION}
- command: \`$COMMAND_LINE\` (iperf3 and wrk runs of ${SECONDS_PER_RUN} s, $PINGS pings at 10 ms)
- rig: vmA $VM_A_IP and vmB $VM_B_IP (MTU $VM_MTU) in VM namespaces, veth to host namespaces with underlays $UNDERLAY_A/24 and $UNDERLAY_B/24 (veth, MTU $UNDERLAY_MTU) on a Linux bridge in an underlay namespace.
- tx-off: \`ethtool -K eth0 tx off\` in both VMs (and on the host ends), so the VM stacks send MTU-sized frames with full checksums; a Linux baseline only. "offloads on" is veth's default (checksum offload, TSO), which Hive runs with (its datapath takes super-frames and partial checksums with their virtio-net headers), so the baseline to compare it with is Linux offloads on.
- Linux: in each host a bridge with the VM's veth and a vxlan device (VNI 42, dstport 4789, remote = the other host), VMs in one /24. Hive: one \`hive agent\` per host (Geneve on UDP 6081), etcd and \`hive api\` on loopback; bridge: one bridge with port vmA bound on hostA and vmB on hostB, VMs in one /24; stateful: the bridge with vmB's port in security group $SECURITY_GROUP (ingress TCP $HTTP_PORT and $IPERF_PORT, UDP $IPERF_PORT and ICMP from 0.0.0.0/0; vmA's port in no group), so vmB's ingress is stateful and allow-only$probe_note; routed: vmB's port on a second bridge (a new port, in no group), a router between the two, VMs in two /28s with the router as gateway; SNAT: vmB's veth bound to an exterior port of that router (100.65.0.17/28, an uplink) which is the router's gateway, so vmA's connections leave translated to 100.65.0.17 with ports from the host's leased blocks, and vmB (the outside) sees only that address.
- connections: nginx (1 worker, \`return 200\`) in vmB; \`wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${SECONDS_PER_RUN}s -H 'Connection: close'\` in vmA, so each request is a new TCP connection (handshake, request, answer, close) and requests/s = connections/s.

$header
$separator
EOF
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
    if [ ${#SYSTEMS[@]} -gt 2 ]; then
        cpu_row "datapath CPU, TCP 1 stream (% of a core, hostA / hostB)" cpu_tcp1
        cpu_row "datapath CPU, UDP 64 B (% of a core, hostA / hostB)" cpu_udp
        cpu_row "datapath CPU, new connections (% of a core, hostA / hostB)" cpu_conn
        echo
        echo "Datapath CPU for Hive is utime + stime of each \`hive agent\` process (all its threads) from /proc/PID/stat over the iperf3 or wrk run, as a percentage of one core; sys includes the kernel work done in the agent's system calls (packet socket and UDP sends, and what the kernel runs in their context)."
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

if [ "$LINUX_ONLY" != 1 ]; then
    log "removing the Linux bridges and vxlans; offloads back on; starting Hive"
    linux_overlay_down
    set_tx_offload on
    hive_up
    SYSTEMS+=(hive)
    measure hive "$AGENT_A_PID" "$AGENT_B_PID"
    if [ "$TRACED" = 1 ]; then
        hive_traced_up
        SYSTEMS+=(hive-traced)
        measure hive-traced "$AGENT_A_PID" "$AGENT_B_PID"
        hive_traced_down
    fi
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
