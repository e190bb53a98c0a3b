#!/usr/bin/env bash
# Scale benchmark of the control plane (issue 15, section 3): a 3-member etcd
# on loopback, `hive api`, and many `hive agent`s on this one machine, each
# agent a "simulated host": its own network namespace (hive-scale-N) with an
# underlay dummy interface and one dummy interface per local port, so the
# agent binds real packet sockets to real (silent) interfaces and runs its
# real control plane: registration, lease, NSDB mirror and watch, bindings.
#
# What it does (scripts/bench-scale.py, the driver, does steps 2-6):
#   1. starts etcd (3 members, temporary directory, free loopback ports) and
#      `hive api` with an admin token;
#   2. builds the cloud through the API: per tenant a router, a chain of
#      rules, bridges (each with a DHCP subnet, linked to the router) and VM
#      ports with fixed IPs filtered by the chain; creates/s measured;
#   3. starts the agents in batches; each batch's local ports are bound to
#      its hosts (agent i hosts ports of tenants i*K .. i*K+K-1 mod T, so a
#      tenant lives on about AGENTS*K/TENANTS hosts) and the script waits
#      until every agent of the batch applied its bindings; it stops starting
#      agents when memory would run short (SCALE_MIN_AVAILABLE_MB);
#   4. agents, etcd and the API at rest: CPU, RSS, etcd watchers and size;
#   5. single changes, one at a time: a rule added to a tenant's chain, a new
#      port bound to one of its tenant's hosts, a route added to a tenant's
#      router; each timed from the request to its application on every agent
#      that needs it (the agents hosting that tenant's ports);
#   6. a burst of port creates with SCALE_CONCURRENCY in flight: creates/s,
#      the same delays, and agents', etcd's and the API's CPU meanwhile.
# "Applied" is read from the agents' logs (debug level): one line per turn
# of the NSDB watch with the revision applied and the wall-clock time.
#
# Usage (root):  scripts/bench-scale.sh
#   HIVE_BIN=path                the hive binary (default: build it in release into .build-release)
#   SCALE_AGENTS=N               agents (default 200)
#   SCALE_TENANTS=N              tenants (default 1000)
#   SCALE_PORTS_PER_TENANT=N     VM ports per tenant (default 100)
#   SCALE_BRIDGES_PER_TENANT=N   bridges per tenant (default 4)
#   SCALE_RULES_PER_CHAIN=N      rules in each tenant's chain (default 5)
#   SCALE_LOCAL_PORTS=N          ports bound to each agent (default 100)
#   SCALE_TENANTS_PER_AGENT=N    tenants those ports come from (default 20)
#   SCALE_SAMPLES=N              changes of each kind timed (default 30)
#   SCALE_BURST=N                creates in the burst (default 1000)
#   SCALE_CONCURRENCY=N          API requests in flight in the burst and the bindings (default 16)
#   SCALE_BUILD_CONCURRENCY=N    API requests in flight while building the cloud (default 16)
#   SCALE_START_BATCH=N          agents started at once (default 20)
#   SCALE_MIN_AVAILABLE_MB=N     start no more agents below this much free memory (default 6144)
#   SCALE_SETTLE_TIMEOUT=N       seconds a batch of agents may take to apply its bindings (default 600)
#   SCALE_CHANGE_TIMEOUT=N       seconds a change may take to reach the agents needing it (default 60; 5x for the burst)
#   SCALE_REST_SECONDS=N         the window of the measurement at rest (default 10)
#   SCALE_QUICK=1                a quick check: 10 agents, 50 tenants, 5,000 ports (explicit SCALE_* win)
#   BENCH_LOG_DIR=dir            keep the logs and results.json there
# The Markdown report goes to stdout, progress to stderr. Everything the
# script creates (namespaces hive-scale-*, the interfaces in them, etcd, the
# API, the agents, the temporary directory) is removed on exit, also on
# failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
for variable in BENCH_LOG_DIR HIVE_BIN SCALE_AGENTS SCALE_BRIDGES_PER_TENANT SCALE_BUILD_CONCURRENCY SCALE_BURST SCALE_CONCURRENCY SCALE_LOCAL_PORTS \
    SCALE_MIN_AVAILABLE_MB SCALE_PORTS_PER_TENANT SCALE_QUICK SCALE_RULES_PER_CHAIN SCALE_SAMPLES SCALE_START_BATCH \
    SCALE_TENANTS SCALE_TENANTS_PER_AGENT SCALE_SETTLE_TIMEOUT SCALE_CHANGE_TIMEOUT SCALE_REST_SECONDS; do
    if [ -n "${!variable:-}" ]; then COMMAND_LINE="$variable=${!variable} $COMMAND_LINE"; fi
done
if [ "${SCALE_QUICK:-0}" = 1 ]; then
    export SCALE_AGENTS=${SCALE_AGENTS:-10} SCALE_TENANTS=${SCALE_TENANTS:-50} SCALE_SAMPLES=${SCALE_SAMPLES:-10}
    export SCALE_START_BATCH=${SCALE_START_BATCH:-10} SCALE_BURST=${SCALE_BURST:-200}
fi

PIDS=()        # etcd members and the API, in start order
WORK=""
KEEP_LOGS=0
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

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
    if [ -n "$WORK" ]; then
        # The driver may still run (Ctrl-C): stop it first, so it starts nothing more.
        [ -n "${DRIVER_PID:-}" ] && stop_process "$DRIVER_PID"
        # Agents first (they revoke their leases), all at once: TERM to every one, then wait.
        if [ -f "$WORK/agents.pids" ]; then
            local agents=() pid
            mapfile -t agents <"$WORK/agents.pids"
            [ ${#agents[@]} -gt 0 ] && log "stopping ${#agents[@]} agents"
            for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null; done
            for pid in "${agents[@]}"; do stop_process "$pid"; done
        fi
    fi
    local index
    for ((index = ${#PIDS[@]} - 1; index >= 0; index--)); do stop_process "${PIDS[index]}"; done
    if [ -n "$WORK" ] && [ -f "$WORK/namespaces" ]; then
        local namespace
        while read -r namespace; do
            [ -e "/run/netns/$namespace" ] || continue
            for pid in $(ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns delete "$namespace" 2>/dev/null || log "could not delete namespace $namespace"
        done <"$WORK/namespaces"
    fi
    if [ -n "$WORK" ]; then
        if [ $KEEP_LOGS = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
    fi
    [ $status -eq 0 ] || log "failed (exit status $status); everything it created is removed"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || die "run as root: it creates network namespaces and the agents open packet sockets"
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v ip >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
fi
if ls /run/netns/hive-scale-* >/dev/null 2>&1; then
    die "namespaces hive-scale-* already exist (another run, or one killed with SIGKILL); remove them with: for n in /run/netns/hive-scale-*; do ip netns delete \$(basename \$n); done"
fi

if [ -n "${BENCH_LOG_DIR:-}" ]; then
    mkdir -p "$BENCH_LOG_DIR"
    WORK=$(cd "$BENCH_LOG_DIR" && pwd)
    KEEP_LOGS=1
    # What an earlier run left there (etcd's data would make an old cluster of the new members).
    rm -rf "$WORK/agents.pids" "$WORK/namespaces" "$WORK"/agent-*.log "$WORK"/etcd-m* "$WORK/agents" "$WORK/results.json"
else
    WORK=$(mktemp -d /tmp/hive-scale.XXXXXX)
fi

if [ -z "${HIVE_BIN:-}" ]; then
    log "building hive in release (swift build -c release --product hive --scratch-path .build-release)"
    (cd "$ROOT" && swift build -c release --product hive --scratch-path .build-release >&2)
    HIVE_BIN="$ROOT/.build-release/release/hive"
fi
[ -x "$HIVE_BIN" ] || die "HIVE_BIN '$HIVE_BIN' is not an executable file"

# Free loopback ports: a random one not listened on (etcd fails loudly if taken meanwhile).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        ss -Htln "sport = :$port" | grep -q . || { echo $port; return; }
    done
}

# --- etcd: 3 members ---------------------------------------------------------

# A port found free may be taken before etcd binds it (other test suites on
# this machine): a member that exits at start makes a new cluster on new ports.
start_etcd() {
    local member attempt=$1
    CLIENT_URLS=() PEER_URLS=() ETCD_PIDS=()
    for member in 0 1 2; do
        CLIENT_URLS+=("http://127.0.0.1:$(free_port)")
        PEER_URLS+=("http://127.0.0.1:$(free_port)")
    done
    local initial_cluster="m0=${PEER_URLS[0]},m1=${PEER_URLS[1]},m2=${PEER_URLS[2]}"
    for member in 0 1 2; do
        rm -rf "$WORK/etcd-m$member"
        # A larger quota than the default 2 GB: a full-scale cloud and its history fit.
        env -u ETCDCTL_API etcd --name "m$member" --data-dir "$WORK/etcd-m$member" \
            --listen-client-urls "${CLIENT_URLS[member]}" --advertise-client-urls "${CLIENT_URLS[member]}" \
            --listen-peer-urls "${PEER_URLS[member]}" --initial-advertise-peer-urls "${PEER_URLS[member]}" \
            --initial-cluster "$initial_cluster" --initial-cluster-state new --initial-cluster-token "hive-scale-$$-$attempt" \
            --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) --logger zap --log-outputs stderr \
            >"$WORK/etcd-m$member.log" 2>&1 &
        PIDS+=($!)
        ETCD_PIDS+=($!)
    done
    local deadline=$((SECONDS + 60)) url pid
    for url in "${CLIENT_URLS[@]}"; do
        until curl -fsS "$url/health" 2>/dev/null | grep -q '"health":"true"'; do
            for pid in "${ETCD_PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null || return 1
            done
            [ $SECONDS -lt $deadline ] || die "etcd member $url not healthy after 60 s; see $WORK/etcd-m*.log"
            sleep 0.2
        done
    done
    printf '%s\n' "${ETCD_PIDS[@]}" >"$WORK/etcd.pids"
}
for attempt in 1 2 3; do
    start_etcd $attempt && break
    log "an etcd member exited at start ($(grep -ho 'bind: address already in use' "$WORK"/etcd-m*.log | head -n1)); starting the cluster again on other ports"
    for pid in "${ETCD_PIDS[@]}"; do stop_process "$pid"; done
    [ $attempt -lt 3 ] || die "etcd did not start in 3 attempts; see $WORK/etcd-m*.log"
done
ETCD=$(IFS=,; echo "${CLIENT_URLS[*]}")
log "etcd: $ETCD"

# --- the API -----------------------------------------------------------------

TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "admin $TOKEN" >"$WORK/tokens")
"$HIVE_BIN" api --listen 127.0.0.1:0 --etcd "$ETCD" --tokens-file "$WORK/tokens" >"$WORK/api.log" 2>&1 &
PIDS+=($!)
echo $! >"$WORK/api.pid"
deadline=$((SECONDS + 60))
API=""
until [ -n "$API" ]; do
    API=$(sed -n 's/^hive api listening on \(http:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$WORK/api.log" | head -n1)
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "hive api exited; see $WORK/api.log: $(tail -n 3 "$WORK/api.log")"
    [ $SECONDS -lt $deadline ] || die "hive api did not start within 60 s"
    [ -n "$API" ] || sleep 0.2
done
log "api: $API"

# --- the run -----------------------------------------------------------------

STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
set +e
SCALE_WORK="$WORK" SCALE_API="$API" SCALE_TOKEN="$TOKEN" SCALE_ETCD="$ETCD" HIVE_BIN="$HIVE_BIN" \
    python3 "$ROOT/scripts/bench-scale.py" >"$WORK/report.md" &
DRIVER_PID=$!
wait $DRIVER_PID
driver_status=$?
DRIVER_PID=""
set -e

echo "### $STARTED_AT"
echo
echo "\`$COMMAND_LINE\`, commit $COMMIT ($(uname -r), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB), load average $LOAD_BEFORE at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
cat "$WORK/report.md"
exit $driver_status
