#!/usr/bin/env python3
"""The driver of scripts/bench-scale.sh: builds the cloud through the API,
starts the agents (one network namespace each, its ports on dummy
interfaces), binds their ports, and measures how long a change takes to
reach every agent that needs it, from the agents' own logs.

Started by bench-scale.sh with etcd and `hive api` already running; it
records every namespace it creates (in WORK/namespaces, before creating it)
and every agent it starts (in WORK/agents.pids) for the shell script's
cleanup, which removes them on any exit. The Markdown report goes to
stdout, progress to stderr, the raw figures to WORK/results.json.

How "applied" is known: an agent at debug level logs one line per turn of
its NSDB watch, after applying it ("applied NSDB changes revision=R
wallClock=T", Sources/HiveAgent/Agent+AppliedLog.swift). A write's revision
is in the API's answer; the delay to an agent is T of the first line of that
agent with a revision >= R, minus the wall-clock time the request was sent.
The agents that need a change are those with a port bound in its tenant's
topology (the placement below); the others are counted apart.
"""

import bisect
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def env_int(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    if not value.isdigit():
        sys.exit(f"{name} must be a whole number, not '{value}'")
    return int(value)


WORK = os.environ["SCALE_WORK"]
API_URL = os.environ["SCALE_API"]            # http://127.0.0.1:PORT
TOKEN = os.environ["SCALE_TOKEN"]
ETCD = os.environ["SCALE_ETCD"]              # comma-separated client URLs
HIVE_BIN = os.environ["HIVE_BIN"]
AGENTS = env_int("SCALE_AGENTS", 200)
TENANTS = env_int("SCALE_TENANTS", 1000)
PORTS_PER_TENANT = env_int("SCALE_PORTS_PER_TENANT", 100)
BRIDGES_PER_TENANT = env_int("SCALE_BRIDGES_PER_TENANT", 4)
RULES_PER_CHAIN = env_int("SCALE_RULES_PER_CHAIN", 5)
LOCAL_PORTS = env_int("SCALE_LOCAL_PORTS", 100)
TENANTS_PER_AGENT = env_int("SCALE_TENANTS_PER_AGENT", 20)
SAMPLES = env_int("SCALE_SAMPLES", 30)
BURST = env_int("SCALE_BURST", 1000)
CONCURRENCY = env_int("SCALE_CONCURRENCY", 16)
BUILD_CONCURRENCY = env_int("SCALE_BUILD_CONCURRENCY", 16)
START_BATCH = env_int("SCALE_START_BATCH", 20)
MIN_AVAILABLE_MB = env_int("SCALE_MIN_AVAILABLE_MB", 6144)
SETTLE_TIMEOUT = env_int("SCALE_SETTLE_TIMEOUT", 600)
CHANGE_TIMEOUT = env_int("SCALE_CHANGE_TIMEOUT", 60)
REST_SECONDS = env_int("SCALE_REST_SECONDS", 10)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

RESULTS = {"config": {
    "agents": AGENTS, "tenants": TENANTS, "portsPerTenant": PORTS_PER_TENANT, "bridgesPerTenant": BRIDGES_PER_TENANT,
    "rulesPerChain": RULES_PER_CHAIN, "localPortsPerAgent": LOCAL_PORTS, "tenantsPerAgent": TENANTS_PER_AGENT,
    "samples": SAMPLES, "burst": BURST, "concurrency": CONCURRENCY, "buildConcurrency": BUILD_CONCURRENCY,
}}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save():
    with open(f"{WORK}/results.json", "w") as file:
        json.dump(RESULTS, file, indent=1, default=str)


# --- the API -----------------------------------------------------------------

class APIError(Exception):
    pass


_local = threading.local()
_host, _port = API_URL.removeprefix("http://").rsplit(":", 1)


def request(method, path, body=None):
    """(status, parsed JSON or None); one keep-alive connection per thread, reopened once on a connection error."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    _local.resent = False
    for attempt in range(2):
        _local.resent = attempt > 0
        connection = getattr(_local, "connection", None)
        if connection is None:
            connection = _local.connection = http.client.HTTPConnection(_host, int(_port), timeout=300)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read()
            return response.status, (json.loads(text) if text else None)
        except (http.client.HTTPException, ConnectionError, OSError):
            connection.close()
            _local.connection = None
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def create(path, body, expected=(201,)):
    """POSTs and returns (object, time sent, time answered); raises on any other status."""
    sent = time.time()
    status, answer = request("POST", path, body)
    answered = time.time()
    # A create sent again after its connection failed may find the first one done: read that one.
    already = re.search(r"already exists \(id ([0-9a-f-]{36})\)", json.dumps(answer)) if status == 409 else None
    if already and _local.resent and path == "/v1/ports":
        log(f"  {path}: the first attempt had created {already.group(1)}; reading it")
        status, answer = request("GET", f"/v1/ports/{already.group(1)}")
        status = 201 if status == 200 else status
    if status not in expected:
        raise APIError(f"POST {path} {json.dumps(body)} -> {status} {answer}")
    return answer, sent, answered


# --- the cloud ---------------------------------------------------------------

def tenant_name(index):
    return f"t{index:04d}"


def port_address(bridge, number):
    host = 10 + number  # 10.B.0.10 onwards; the gateway is 10.B.0.1
    return f"10.{bridge}.{host // 256}.{host % 256}"


def build_tenant(index, counter):
    """A router, a chain with its rules, bridges (each with a DHCP subnet and
    linked to the router) and the tenant's VM ports, spread over the bridges
    and filtered by the chain."""
    tenant = tenant_name(index)
    created = 0

    def post(path, body):
        nonlocal created
        answer, _, _ = create(path, body)
        created += 1
        return answer

    router = post("/v1/routers", {"name": "router", "tenantId": tenant})["id"]
    chain = post("/v1/chains", {"name": "in", "tenantId": tenant})["id"]
    for rule in range(RULES_PER_CHAIN):
        post(f"/v1/chains/{chain}/rules", {
            "conditions": {"ipProtocol": {"value": 6}, "destinationPorts": {"value": {"start": 1000 + rule, "end": 1000 + rule}}},
            "action": {"type": "accept"}})
    bridges = []
    for bridge in range(BRIDGES_PER_TENANT):
        bridge_id = post("/v1/bridges", {"name": f"b{bridge}", "tenantId": tenant})["id"]
        post(f"/v1/bridges/{bridge_id}/dhcp-subnets", {
            "subnet": f"10.{bridge}.0.0/16", "rangeStart": f"10.{bridge}.0.10", "rangeEnd": f"10.{bridge}.255.250",
            "gateway": f"10.{bridge}.0.1"})
        uplink = post("/v1/ports", {"deviceId": bridge_id, "deviceKind": "bridge", "name": f"b{bridge}-router", "tenantId": tenant})["id"]
        router_port = post("/v1/ports", {
            "deviceId": router, "deviceKind": "router", "address": f"10.{bridge}.0.1", "subnet": f"10.{bridge}.0.0/16",
            "tenantId": tenant})["id"]
        _, _, _ = create(f"/v1/ports/{router_port}/link", {"peerId": uplink}, expected=(200, 201))
        bridges.append(bridge_id)
    ports = []
    for number in range(PORTS_PER_TENANT):
        bridge = number % BRIDGES_PER_TENANT
        ports.append(post("/v1/ports", {
            "deviceId": bridges[bridge], "deviceKind": "bridge", "name": f"vm{number}", "tenantId": tenant,
            "fixedIPs": [port_address(bridge, number // BRIDGES_PER_TENANT)], "inboundChainId": chain})["id"])
    with counter["lock"]:
        counter["objects"] += created
        counter["tenants"] += 1
    return {"name": tenant, "router": router, "chain": chain, "bridges": bridges, "ports": ports}


def build_cloud():
    counter = {"lock": threading.Lock(), "objects": 0, "tenants": 0}
    started = time.time()
    done = threading.Event()

    def progress():
        while not done.wait(15):
            with counter["lock"]:
                objects, tenants = counter["objects"], counter["tenants"]
            elapsed = time.time() - started
            log(f"  {tenants} of {TENANTS} tenants, {objects} objects, {objects / elapsed:.0f} objects/s")

    threading.Thread(target=progress, daemon=True).start()
    with ThreadPoolExecutor(BUILD_CONCURRENCY) as pool:
        cloud = list(pool.map(lambda index: build_tenant(index, counter), range(TENANTS)))
    done.set()
    elapsed = time.time() - started
    RESULTS["cloudBuild"] = {"objects": counter["objects"], "seconds": elapsed, "objectsPerSecond": counter["objects"] / elapsed,
                             "links": TENANTS * BRIDGES_PER_TENANT}
    log(f"cloud built: {counter['objects']} objects in {elapsed:.1f} s ({counter['objects'] / elapsed:.0f} objects/s, "
        f"plus {TENANTS * BRIDGES_PER_TENANT} links)")
    return cloud


# --- placement ---------------------------------------------------------------

def placement():
    """Agent i hosts ports of tenants (i*K + j) mod T for j < K, LOCAL_PORTS/K
    of each: each tenant's next unbound ones. Returns per agent a list of
    (tenant, first port, count), and per tenant the agents hosting it."""
    per_slot = max(1, LOCAL_PORTS // TENANTS_PER_AGENT)
    used = [0] * TENANTS
    slots = []
    hosts_of = [[] for _ in range(TENANTS)]
    for agent in range(AGENTS):
        mine = []
        for slot in range(TENANTS_PER_AGENT):
            tenant = (agent * TENANTS_PER_AGENT + slot) % TENANTS
            count = min(per_slot, PORTS_PER_TENANT - used[tenant])
            if count <= 0:
                continue
            mine.append((tenant, used[tenant], count))
            used[tenant] += count
            if agent not in hosts_of[tenant]:
                hosts_of[tenant].append(agent)
        slots.append(mine)
    return slots, hosts_of


# --- the agents' logs ----------------------------------------------------------

APPLIED = re.compile(r"applied NSDB changes")
REVISION = re.compile(r"\brevision=(\d+)")
WALL = re.compile(r"\bwallClock=(\d+\.\d+)")
UP = re.compile(r"agent up.*\bid=([0-9a-f-]{36})|\bid=([0-9a-f-]{36}).*agent up")


class AgentLog:
    """The applied revisions of one agent, read incrementally from its log."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.revisions = []   # ascending
        self.times = []
        self.host_id = None
        self.bound = set()    # interfaces of "bound port" lines
        self.warnings = 0
        self.last_warning = ""

    def refresh(self):
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            if APPLIED.search(line):
                revision, wall = REVISION.search(line), WALL.search(line)
                if revision and wall:
                    value = int(revision.group(1))
                    if self.revisions and value < self.revisions[-1]:
                        continue
                    self.revisions.append(value)
                    self.times.append(float(wall.group(1)))
            elif "bound port" in line:
                interface = re.search(r"\binterface=(\S+)", line)
                if interface:
                    self.bound.add(interface.group(1))
            elif self.host_id is None and "agent up" in line:
                match = UP.search(line)
                if match:
                    self.host_id = match.group(1) or match.group(2)
            elif " warning " in line or " error " in line:
                self.warnings += 1
                self.last_warning = line[:300]

    def applied_at(self, revision):
        """The wall-clock time this agent first applied `revision` or later; None if not yet."""
        index = bisect.bisect_left(self.revisions, revision)
        return self.times[index] if index < len(self.revisions) else None

    def current(self):
        return self.revisions[-1] if self.revisions else 0


# --- processes ---------------------------------------------------------------

def proc_sample(pid):
    """(cpu seconds, RSS kB, peak RSS kB, anonymous RSS kB) of a process, or None if it is gone.

    RSS counts the pages of the binary and the shared libraries it touched
    (about 40 MB for the agent, shared with every process mapping them);
    the anonymous part is the agent's own memory."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as file:
            status = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1))
    return cpu, rss, hwm, anon


def mem_available_mb():
    with open("/proc/meminfo") as file:
        return int(re.search(r"MemAvailable:\s+(\d+)", file.read()).group(1)) // 1024


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def etcd_metrics():
    """Per member: watchers, watch streams, db size, CPU seconds, RSS."""
    wanted = {
        "etcd_debugging_mvcc_watcher_total": "watchers", "etcd_debugging_mvcc_watch_stream_total": "watchStreams",
        "etcd_mvcc_db_total_size_in_bytes": "dbBytes", "process_cpu_seconds_total": "cpuSeconds",
        "process_resident_memory_bytes": "rssBytes", "etcd_debugging_mvcc_keys_total": "keys",
    }
    members = []
    for url in ETCD.split(","):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        member = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) == 2 and parts[0] in wanted:
                member[wanted[parts[0]]] = float(parts[1])
        members.append(member)
    return members


def etcd_pids():
    with open(f"{WORK}/etcd.pids") as file:
        return [int(line) for line in file.read().split()]


def api_pid():
    with open(f"{WORK}/api.pid") as file:
        return int(file.read().strip())


class Fleet:
    """The agents: namespaces, processes, logs."""

    def __init__(self, slots):
        self.slots = slots
        self.pids = {}      # agent index -> pid
        self.logs = {}      # agent index -> AgentLog
        self.processes = {}
        os.makedirs(f"{WORK}/agents", exist_ok=True)

    @staticmethod
    def namespace(index):
        return f"hive-scale-{index}"

    @staticmethod
    def underlay(index):
        number = index + 1
        return f"100.64.{number // 256}.{number % 256}"

    def make_namespaces(self, indices):
        """One namespace per agent: loopback, an underlay dummy with the agent's
        address, and one dummy interface per local port (p0, p1, ...);
        IPv6 off so that no interface sends anything."""
        with open(f"{WORK}/namespaces", "a") as file:
            for index in indices:
                file.write(self.namespace(index) + "\n")
        for index in indices:
            namespace = self.namespace(index)
            subprocess.run(["ip", "netns", "add", namespace], check=True)
            subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"], check=True)
            commands = ["link set dev lo up", "link add ul0 type ifb", f"address add {self.underlay(index)}/16 dev ul0",
                        "link set dev ul0 up"]
            interfaces = sum(count for _, _, count in self.slots[index])
            for number in range(interfaces):
                commands += [f"link add p{number} type ifb", f"link set dev p{number} up"]
            subprocess.run(["ip", "-n", namespace, "-batch", "-"], input="\n".join(commands) + "\n", text=True, check=True)

    def start(self, indices):
        for index in indices:
            logfile = open(f"{WORK}/agent-{index}.log", "ab")
            process = subprocess.Popen(
                [HIVE_BIN, "agent", "--name", f"scale-{index:03d}", "--underlay", self.underlay(index),
                 "--netns", self.namespace(index), "--state-dir", f"{WORK}/agents/{index}", "--tunnel-zone", "scale",
                 "--etcd", ETCD, "--log-level", "debug"],
                stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            logfile.close()
            self.processes[index] = process
            self.pids[index] = process.pid
            with open(f"{WORK}/agents.pids", "a") as file:
                file.write(f"{process.pid}\n")
            self.logs[index] = AgentLog(f"{WORK}/agent-{index}.log")

    def dead(self):
        return [index for index, process in self.processes.items() if process.poll() is not None]

    def refresh(self):
        for agent_log in self.logs.values():
            agent_log.refresh()

    def wait_up(self, indices, timeout):
        deadline = time.time() + timeout
        while True:
            self.refresh()
            waiting = [index for index in indices if self.logs[index].host_id is None]
            if not waiting:
                return
            dead = [index for index in self.dead() if index in indices]
            if dead:
                raise RuntimeError(f"agent {dead[0]} exited while starting; see agent-{dead[0]}.log: {self.logs[dead[0]].last_warning}")
            if time.time() > deadline:
                raise RuntimeError(f"{len(waiting)} agents not up after {timeout} s (first: agent {waiting[0]})")
            time.sleep(0.2)

    def wait_applied(self, targets, timeout):
        """targets: {agent index: revision}. Returns the agents that had not applied theirs by the deadline."""
        deadline = time.time() + timeout
        while True:
            self.refresh()
            missing = [index for index, revision in targets.items() if self.logs[index].current() < revision]
            if not missing or time.time() > deadline:
                return missing
            dead = [index for index in self.dead() if index in targets]
            if dead:
                raise RuntimeError(f"agent {dead[0]} exited; see agent-{dead[0]}.log")
            time.sleep(0.05)

    def wait_bound(self, targets, counts, timeout):
        """Like `wait_applied`, but an agent whose first read of the NSDB
        already held its bindings (so no watch turn brings them) counts as
        done once it logged "bound port" for each of its `counts` ports."""
        deadline = time.time() + timeout
        while True:
            self.refresh()
            missing = [index for index, revision in targets.items()
                       if self.logs[index].current() < revision and len(self.logs[index].bound) < counts[index]]
            if not missing or time.time() > deadline:
                return missing
            dead = [index for index in self.dead() if index in targets]
            if dead:
                raise RuntimeError(f"agent {dead[0]} exited; see agent-{dead[0]}.log")
            time.sleep(0.05)

    def sample(self):
        return {index: proc_sample(pid) for index, pid in self.pids.items()}


def summarize(values):
    """p50, p99, max of a list (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(fraction):
        return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]

    return {"count": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1], "mean": sum(ordered) / len(ordered)}


def resources(fleet, before, after, seconds):
    """Agent CPU (% of a core) and RSS (MB) between two samples."""
    cpu, rss, anon = [], [], []
    for index, end in after.items():
        start = before.get(index)
        if end is None or start is None:
            continue
        cpu.append((end[0] - start[0]) / seconds * 100)
        rss.append(end[1] / 1024)
        anon.append(end[3] / 1024)
    return {"cpuPercent": summarize(cpu), "cpuPercentTotal": sum(cpu), "rssMB": summarize(rss), "rssMBTotal": sum(rss),
            "anonMB": summarize(anon), "anonMBTotal": sum(anon)}


class Sampler:
    """Samples every agent's RSS twice a second in the background; keeps each one's largest."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.peak = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            for index, sample in self.fleet.sample().items():
                if sample:
                    self.peak[index] = max(self.peak.get(index, 0), sample[1])
            self.stop.wait(0.5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def other_processes():
    samples = {"api": proc_sample(api_pid())}
    for number, pid in enumerate(etcd_pids()):
        samples[f"etcd{number}"] = proc_sample(pid)
    return samples


def other_cpu(before, after, seconds):
    return {name: {"cpuPercent": (after[name][0] - before[name][0]) / seconds * 100, "rssMB": after[name][1] / 1024}
            for name in after if after[name] and before.get(name)}


# --- phases ------------------------------------------------------------------

def bind_agents(fleet, cloud, indices, host_ids):
    """Creates the bindings of `indices`' local ports; returns per agent the highest binding revision."""
    jobs = []
    for index in indices:
        interface = 0
        for tenant, first, count in fleet.slots[index]:
            for port in cloud[tenant]["ports"][first:first + count]:
                jobs.append((index, port, f"p{interface}"))
                interface += 1

    def bind(job):
        index, port, interface = job
        for attempt in range(5):
            try:
                answer, _, _ = create("/v1/bindings", {"hostId": host_ids[index], "portId": port, "interfaceName": interface})
                return index, answer["revision"]
            except APIError as error:
                # 409 after a 503: the unconfirmed write had happened after all (the read
                # back ran before it was visible): that binding is this one.
                if " -> 409 " in str(error) and attempt > 0:
                    status, found = request("GET", f"/v1/bindings?portId={port}")
                    if status == 200 and found["items"] and found["items"][0].get("interfaceName") == interface:
                        return index, found["items"][0]["revision"]
                    raise
                # 503: the NSDB did not answer in time (agents starting load it hard); the write
                # may have happened: read the port's binding before writing it again.
                if " -> 503 " not in str(error) or attempt == 4:
                    raise
                log(f"  binding of port {port} not confirmed (503), reading it back")
                time.sleep(1)
                status, found = request("GET", f"/v1/bindings?portId={port}")
                if status == 200 and found["items"]:
                    return index, found["items"][0]["revision"]
        raise AssertionError("unreachable")

    highest = {}
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for index, revision in pool.map(bind, jobs):
            highest[index] = max(highest.get(index, 0), revision)
    return highest, len(jobs)


def start_fleet(fleet, cloud):
    """Starts agents in batches, binds each batch's ports and waits until the
    batch applied them; stops early when memory runs short."""
    host_ids = {}
    started = []
    RESULTS["start"] = {"batches": []}
    peak_rss = 0
    for first in range(0, AGENTS, START_BATCH):
        batch = list(range(first, min(AGENTS, first + START_BATCH)))
        available = mem_available_mb()
        projected = available - len(batch) * peak_rss / 1024
        if started and projected < MIN_AVAILABLE_MB:
            RESULTS["start"]["stoppedEarly"] = (
                f"stopped at {len(started)} agents: {available} MB available, another {len(batch)} agents of up to "
                f"{peak_rss / 1024:.0f} MB each would leave {projected:.0f} MB, under SCALE_MIN_AVAILABLE_MB={MIN_AVAILABLE_MB}")
            log(RESULTS["start"]["stoppedEarly"])
            break
        began = time.time()
        fleet.make_namespaces(batch)
        fleet.start(batch)
        fleet.wait_up(batch, 120)
        for index in batch:
            host_ids[index] = fleet.logs[index].host_id
        up = time.time()
        highest, count = bind_agents(fleet, cloud, batch, host_ids)
        bound = time.time()
        counts = {index: sum(count for _, _, count in fleet.slots[index]) for index in batch}
        missing = fleet.wait_bound(highest, counts, SETTLE_TIMEOUT)
        if missing:
            raise RuntimeError(f"{len(missing)} agents had not applied their bindings after {SETTLE_TIMEOUT} s (first: agent {missing[0]})")
        settled = time.time()
        started += batch
        samples = fleet.sample()
        peak_rss = max([peak_rss] + [sample[2] for sample in samples.values() if sample])
        batch_rss = [samples[index][1] / 1024 for index in batch if samples[index]]
        entry = {"agents": len(started), "up": up - began, "bindings": count, "bindSeconds": bound - up, "settleSeconds": settled - bound,
                 "batchRSSMB": summarize(batch_rss), "peakRSSMB": peak_rss / 1024, "memAvailableMB": mem_available_mb(), "load": load_average()}
        RESULTS["start"]["batches"].append(entry)
        log(f"  {len(started)} agents up and bound ({count} bindings in {bound - up:.1f} s, applied {settled - bound:.1f} s later); "
            f"RSS of the batch p50 {entry['batchRSSMB']['p50']:.0f} MB, peak so far {peak_rss / 1024:.0f} MB; "
            f"{entry['memAvailableMB']} MB available; load {entry['load']}")
        save()
    RESULTS["start"]["agents"] = len(started)
    return started, host_ids


def measure_rest(fleet, label):
    time.sleep(2)
    before, others_before, etcd_before = fleet.sample(), other_processes(), etcd_metrics()
    time.sleep(REST_SECONDS)
    after, others_after, etcd_after = fleet.sample(), other_processes(), etcd_metrics()
    RESULTS[label] = {
        "agents": resources(fleet, before, after, REST_SECONDS), "others": other_cpu(others_before, others_after, REST_SECONDS),
        "etcd": etcd_after, "etcdCPUPercent": [(b["cpuSeconds"] - a["cpuSeconds"]) / REST_SECONDS * 100 for a, b in zip(etcd_before, etcd_after)],
        "seconds": REST_SECONDS, "load": load_average(), "memAvailableMB": mem_available_mb(),
    }
    agents = RESULTS[label]["agents"]
    log(f"{label}: agent CPU p50 {agents['cpuPercent']['p50']:.2f}% max {agents['cpuPercent']['max']:.2f}% "
        f"(all {agents['cpuPercentTotal']:.0f}%), RSS p50 {agents['rssMB']['p50']:.0f} MB max {agents['rssMB']['max']:.0f} MB; "
        f"etcd watchers {[member.get('watchers') for member in etcd_after]}")


def delays(fleet, writes, needed_of, started):
    """Per write (revision, time sent, tenant): delays to the agents that need it,
    and to the others that applied it."""
    fleet.refresh()
    needed, others, missing, others_count = [], [], 0, 0
    for revision, sent, tenant in writes:
        need = set(needed_of[tenant])
        for index in started:
            applied = fleet.logs[index].applied_at(revision)
            if index in need:
                if applied is None:
                    missing += 1
                else:
                    needed.append(applied - sent)
            else:
                others_count += 1
                if applied is not None:
                    others.append(applied - sent)
    return {"needed": summarize(needed), "missing": missing, "others": summarize(others), "othersApplied": len(others),
            "othersTotal": others_count}


def probe(fleet, cloud, needed_of, started, host_ids, kind):
    """SAMPLES single changes of one kind, one at a time, each in a tenant hosted somewhere."""
    rng = random.Random(kind)
    tenants = [tenant for tenant in range(TENANTS) if any(agent in started for agent in needed_of[tenant])]
    writes, api_seconds = [], []
    for sample in range(SAMPLES):
        tenant = rng.choice(tenants)
        hosts = [agent for agent in needed_of[tenant] if agent in started]
        entry = cloud[tenant]
        if kind == "rule":
            answer, sent, answered = create(f"/v1/chains/{entry['chain']}/rules", {
                "conditions": {"ipProtocol": {"value": 17}, "destinationPorts": {"value": {"start": 2000 + sample, "end": 2000 + sample}}},
                "action": {"type": "drop"}})
        elif kind == "route":
            answer, sent, answered = create(f"/v1/routers/{entry['router']}/routes", {
                "destination": f"172.{16 + sample // 256}.{sample % 256}.0/24", "kind": "blackhole"})
        else:
            # A new port in the tenant (not timed, applied first), then its binding to one of the tenant's hosts.
            port, _, _ = create("/v1/ports", {"deviceId": entry["bridges"][0], "deviceKind": "bridge", "name": f"probe{sample}",
                                              "tenantId": entry["name"]})
            fleet.wait_applied({agent: port["revision"] for agent in hosts}, CHANGE_TIMEOUT)
            host = rng.choice(hosts)
            interface = f"x{sample}"
            subprocess.run(["ip", "-n", fleet.namespace(host), "-batch", "-"], check=True, text=True,
                           input=f"link add {interface} type ifb\nlink set dev {interface} up\n")
            answer, sent, answered = create("/v1/bindings", {"hostId": host_ids[host], "portId": port["id"], "interfaceName": interface})
        writes.append((answer["revision"], sent, tenant))
        api_seconds.append(answered - sent)
        fleet.wait_applied({agent: answer["revision"] for agent in hosts}, CHANGE_TIMEOUT)
        time.sleep(0.1)
    time.sleep(1)
    result = delays(fleet, writes, needed_of, started)
    result["apiSeconds"] = summarize(api_seconds)
    result["neededPerChange"] = summarize([len([a for a in needed_of[t] if a in started]) for _, _, t in writes])
    RESULTS.setdefault("changes", {})[kind] = result
    log(f"{kind}: to every agent that needs it p50 {result['needed']['p50'] * 1000:.0f} ms, p99 {result['needed']['p99'] * 1000:.0f} ms, "
        f"max {result['needed']['max'] * 1000:.0f} ms ({result['needed']['count']} deliveries, {result['missing']} missing); "
        f"not-needed agents applied {result['othersApplied']} of {result['othersTotal']}")
    save()


def burst(fleet, cloud, needed_of, started):
    """BURST port creates at once (CONCURRENCY in flight), spread over hosted tenants."""
    rng = random.Random("burst")
    tenants = [tenant for tenant in range(TENANTS) if any(agent in started for agent in needed_of[tenant])]
    plan = [rng.choice(tenants) for _ in range(BURST)]

    def one(item):
        number, tenant = item
        entry = cloud[tenant]
        answer, sent, answered = create("/v1/ports", {
            "deviceId": entry["bridges"][number % len(entry["bridges"])], "deviceKind": "bridge", "name": f"burst{number}",
            "tenantId": entry["name"], "inboundChainId": entry["chain"]})
        return answer["revision"], sent, answered, tenant

    before, others_before, etcd_before = fleet.sample(), other_processes(), etcd_metrics()
    began = time.time()
    with Sampler(fleet) as sampler:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            done = list(pool.map(one, enumerate(plan)))
        written = time.time()
        targets = {}
        for revision, _, _, tenant in done:
            for agent in needed_of[tenant]:
                if agent in started:
                    targets[agent] = max(targets.get(agent, 0), revision)
        missing = fleet.wait_applied(targets, CHANGE_TIMEOUT * 5)
        settled = time.time()
        after, others_after, etcd_after = fleet.sample(), other_processes(), etcd_metrics()
    seconds = settled - began
    time.sleep(1)
    result = delays(fleet, [(revision, sent, tenant) for revision, sent, _, tenant in done], needed_of, started)
    result.update({
        "creates": BURST, "writeSeconds": written - began, "createsPerSecond": BURST / (written - began),
        "apiSeconds": summarize([answered - sent for _, sent, answered, _ in done]),
        "allAppliedSeconds": seconds, "agentsNotDone": len(missing),
        "agents": resources(fleet, before, after, seconds), "others": other_cpu(others_before, others_after, seconds),
        "etcd": etcd_after, "etcdCPUPercent": [(b["cpuSeconds"] - a["cpuSeconds"]) / seconds * 100 for a, b in zip(etcd_before, etcd_after)],
        "peakRSSMB": summarize([kb / 1024 for kb in sampler.peak.values()]), "load": load_average(),
    })
    RESULTS["burst"] = result
    log(f"burst: {BURST} creates in {written - began:.1f} s ({result['createsPerSecond']:.0f}/s); every needed agent had all of them "
        f"{seconds:.1f} s after the first; delay p50 {result['needed']['p50'] * 1000:.0f} ms p99 {result['needed']['p99'] * 1000:.0f} ms "
        f"max {result['needed']['max'] * 1000:.0f} ms")
    save()


# --- the report --------------------------------------------------------------

def ms(value):
    return "-" if value is None else f"{value * 1000:,.0f}"


def report():
    lines = []
    config = RESULTS["config"]
    start = RESULTS.get("start", {})
    lines.append(f"Agents {start.get('agents', 0)} of {config['agents']} asked; {config['tenants']} tenants x "
                 f"{config['portsPerTenant']} VM ports ({config['tenants'] * config['portsPerTenant']:,}), "
                 f"{config['bridgesPerTenant']} bridges and a router per tenant, a chain of {config['rulesPerChain']} rules on every VM port; "
                 f"{config['localPortsPerAgent']} local ports per agent over {config['tenantsPerAgent']} tenants.")
    if start.get("stoppedEarly"):
        lines.append(f"**Fewer agents than asked:** {start['stoppedEarly']}.")
    lines.append("")
    build = RESULTS.get("cloudBuild")
    if build:
        lines.append(f"Cloud build through the API (no agent running, {config['buildConcurrency']} requests in flight): "
                     f"{build['objects']:,} objects in {build['seconds']:.0f} s = **{build['objectsPerSecond']:.0f} creates/s** "
                     f"(plus {build['links']:,} links).")
        lines.append("")
    changes = RESULTS.get("changes", {})
    burst_result = RESULTS.get("burst")
    if changes or burst_result:
        lines.append("| change | samples | agents needing each (p50) | to every agent that needs it p50 / p99 / max (ms) | not delivered | API answer p50 / p99 (ms) | not-needed agents that applied it |")
        lines.append("|---|---|---|---|---|---|---|")
        names = {"rule": "rule added to a tenant's chain", "binding": "port binding (new port, bound to a host of its tenant)",
                 "route": "route added to a tenant's router"}
        for kind in ("rule", "binding", "route"):
            result = changes.get(kind)
            if not result or not result["needed"]:
                continue
            lines.append(f"| {names[kind]} | {config['samples']} | {result['neededPerChange']['p50']} | "
                         f"{ms(result['needed']['p50'])} / {ms(result['needed']['p99'])} / {ms(result['needed']['max'])} | {result['missing']} | "
                         f"{ms(result['apiSeconds']['p50'])} / {ms(result['apiSeconds']['p99'])} | {result['othersApplied']} of {result['othersTotal']} |")
        if burst_result and burst_result["needed"]:
            lines.append(f"| burst of {burst_result['creates']} port creates | {burst_result['creates']} | - | "
                         f"{ms(burst_result['needed']['p50'])} / {ms(burst_result['needed']['p99'])} / {ms(burst_result['needed']['max'])} | "
                         f"{burst_result['missing']} | {ms(burst_result['apiSeconds']['p50'])} / {ms(burst_result['apiSeconds']['p99'])} | "
                         f"{burst_result['othersApplied']} of {burst_result['othersTotal']} |")
        lines.append("")
    if burst_result:
        lines.append(f"Burst: {burst_result['creates']} creates written in {burst_result['writeSeconds']:.1f} s = "
                     f"**{burst_result['createsPerSecond']:.0f} creates/s** ({config['concurrency']} in flight, the agents running); every agent that needed them had "
                     f"applied all of them {burst_result['allAppliedSeconds']:.1f} s after the first was sent.")
        lines.append("")
    lines.append("| | agents at rest | agents during the burst |")
    lines.append("|---|---|---|")
    rest = RESULTS.get("rest")
    busy = burst_result["agents"] if burst_result else None

    def cell(agents, key, unit):
        if not agents or not agents[key]:
            return "-"
        return f"p50 {agents[key]['p50']:.1f} / max {agents[key]['max']:.1f} {unit}"

    lines.append(f"| agent CPU (% of a core) | {cell(rest and rest['agents'], 'cpuPercent', '')} | {cell(busy, 'cpuPercent', '')} |")
    lines.append(f"| all agents' CPU (% of a core) | {rest['agents']['cpuPercentTotal']:.0f} | {busy['cpuPercentTotal']:.0f} |"
                 if rest and busy else "| all agents' CPU | - | - |")
    peak = burst_result["peakRSSMB"] if burst_result else None
    lines.append(f"| agent RSS (MB) | {cell(rest and rest['agents'], 'rssMB', '')} | "
                 f"{'p50 %.1f / max %.1f' % (peak['p50'], peak['max']) if peak else '-'} (largest sampled) |")
    lines.append(f"| all agents' RSS (MB) | {rest['agents']['rssMBTotal']:,.0f} | - |" if rest else "| all agents' RSS | - | - |")
    lines.append(f"| agent anonymous RSS (MB; RSS less the shared binary and libraries) | {cell(rest and rest['agents'], 'anonMB', '')} | - |")
    if rest:
        etcd_rest = rest["etcdCPUPercent"]
        etcd_busy = burst_result["etcdCPUPercent"] if burst_result else []
        lines.append(f"| etcd CPU, 3 members (% of a core) | {' / '.join(f'{v:.0f}' for v in etcd_rest)} | {' / '.join(f'{v:.0f}' for v in etcd_busy)} |")
        lines.append(f"| API CPU (% of a core) | {rest['others'].get('api', {}).get('cpuPercent', 0):.0f} | "
                     f"{burst_result['others'].get('api', {}).get('cpuPercent', 0) if burst_result else 0:.0f} |")
        members = rest["etcd"]
        lines.append(f"| etcd watchers / watch streams (per member) | {' / '.join(str(int(m.get('watchers', 0))) for m in members)} ; "
                     f"{' / '.join(str(int(m.get('watchStreams', 0))) for m in members)} | - |")
        sizes = lambda group: " / ".join("%.0f" % (member.get("dbBytes", 0) / 1e6) for member in group)
        lines.append(f"| etcd database size (MB, per member) | {sizes(members)} | {sizes(burst_result['etcd']) if burst_result else '-'} |")
        lines.append(f"| etcd keys / RSS (MB, member 0) | {int(members[0].get('keys', 0)):,} / {members[0].get('rssBytes', 0) / 1e6:.0f} | - |")
        lines.append(f"| load average / memory available (MB) | {rest['load']} / {rest['memAvailableMB']:,} | {burst_result['load'] if burst_result else '-'} / - |")
    lines.append("")
    batches = start.get("batches", [])
    if batches:
        lines.append("Starting the agents (batches of %d; each: started, registered, its ports bound, bindings applied):" % START_BATCH)
        lines.append("")
        lines.append("| agents | up (s) | bindings | bind (s) | applied after (s) | batch RSS p50 (MB) | largest peak RSS so far (MB) | memory available (MB) | load |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for entry in batches:
            lines.append(f"| {entry['agents']} | {entry['up']:.1f} | {entry['bindings']} | {entry['bindSeconds']:.1f} | {entry['settleSeconds']:.1f} | "
                         f"{entry['batchRSSMB']['p50']:.0f} | {entry['peakRSSMB']:.0f} | {entry['memAvailableMB']:,} | {entry['load']} |")
        lines.append("")
    return "\n".join(lines)


def main():
    log(f"building the cloud: {TENANTS} tenants x {PORTS_PER_TENANT} ports, {BUILD_CONCURRENCY} requests in flight")
    cloud = build_cloud()
    save()
    slots, needed_of = placement()
    fleet = Fleet(slots)
    try:
        log(f"starting {AGENTS} agents in batches of {START_BATCH}")
        started, host_ids = start_fleet(fleet, cloud)
        started_set = set(started)
        needed_of = [[agent for agent in agents if agent in started_set] for agents in needed_of]
        measure_rest(fleet, "rest")
        for kind in ("rule", "binding", "route"):
            probe(fleet, cloud, needed_of, started_set, host_ids, kind)
        burst(fleet, cloud, needed_of, started_set)
        fleet.refresh()
        RESULTS["warnings"] = {index: {"count": agent_log.warnings, "last": agent_log.last_warning}
                               for index, agent_log in fleet.logs.items() if agent_log.warnings}
    except Exception as error:  # the report of what was measured still goes out
        RESULTS["failure"] = f"{type(error).__name__}: {error}"
        log(f"ERROR: {RESULTS['failure']}")
    save()
    print(report())
    if RESULTS.get("failure"):
        print(f"\n**The run failed:** {RESULTS['failure']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
