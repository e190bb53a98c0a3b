import Foundation
import HiveHTTP
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway etcd cluster of real processes on loopback, in a temporary directory.
///
/// Each cluster has its own directory (data dirs, one log per member, pid
/// files) and its own free ports, so tests may run clusters in parallel.
///
/// etcd must not outlive the test process, even when that process crashes
/// or is killed. `PR_SET_PDEATHSIG` does not fit: it fires when the *thread*
/// that spawned the child exits, and Swift concurrency's pool threads come
/// and go. Instead every cluster starts a watchdog, a tiny `/bin/sh` loop
/// that is the test process's child: it polls its own parent pid (five times
/// a second) and, once the test process is gone (it gets re-parented), kills
/// every etcd listed in the cluster's pid files and removes the directory.
/// `stop()` kills the watchdog along with the members.
///
/// With `tls`, the cluster is set up as etcd's security guide does it:
/// certificates from a test CA (`pki`, made with openssl in the cluster's
/// directory), https client and peer URLs, and client certificates required
/// on both (`--client-cert-auth`, `--peer-client-cert-auth`).
public final class EtcdCluster: Sendable {
    public struct Member: Sendable {
        public var name: String
        public var clientPort: Int
        public var peerPort: Int
        public var usesTLS: Bool
        var scheme: String { usesTLS ? "https" : "http" }
        public var clientURL: String { "\(scheme)://127.0.0.1:\(clientPort)" }
        public var peerURL: String { "\(scheme)://127.0.0.1:\(peerPort)" }
    }

    static let executable = "/usr/bin/etcd"

    public let directory: String
    public let members: [Member]
    /// The certificates of a TLS cluster: members serve `pki.server`, clients present `pki.client`.
    public let pki: TestPKI?
    private let state: Mutex<State>

    private struct State {
        var processes: [Process?]
        var watchdog: Process?
        var stopped = false
    }

    public var endpoints: [String] { members.map(\.clientURL) }

    private init(directory: String, members: [Member], pki: TestPKI?) {
        self.directory = directory
        self.members = members
        self.pki = pki
        self.state = Mutex(State(processes: Array(repeating: nil, count: members.count)))
    }

    /// Starts `members` etcd processes as one new cluster and waits until each answers `/health`.
    public static func start(members count: Int = 3, tls: Bool = false) async throws -> EtcdCluster {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw EtcdClusterError(
                "\(executable) is missing: run scripts/install-test-deps.sh (it installs Debian's etcd-server)")
        }
        // A port found free can be taken by someone else before etcd binds
        // it; such a start fails with "address already in use" and is retried.
        var attempt = 1
        while true {
            let cluster = try makeCluster(members: count, tls: tls)
            do {
                try cluster.startWatchdog()
                for index in cluster.members.indices { try cluster.launch(index) }
                try await cluster.waitUntilServing(cluster.members.indices)
                return cluster
            } catch {
                let portTaken = cluster.logs().contains { $0.contains("address already in use") }
                cluster.stop()
                if portTaken, attempt < 3 {
                    attempt += 1
                    continue
                }
                throw error
            }
        }
    }

    /// SIGKILLs a member and waits for it to exit.
    public func kill(member index: Int) {
        let process = state.withLock { state -> Process? in
            defer { state.processes[index] = nil }
            return state.processes[index]
        }
        guard let process else { return }
        killProcess(process.processIdentifier)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: pidPath(index))
    }

    /// Starts a killed member again on its data dir and ports; waits until it serves.
    public func restart(member index: Int) async throws {
        try launch(index)
        try await waitUntilServing([index])
    }

    /// Kills every member and the watchdog, removes the directory. Idempotent.
    public func stop() {
        let (processes, watchdog) = state.withLock { state -> ([Process], Process?) in
            guard !state.stopped else { return ([], nil) }
            state.stopped = true
            defer {
                state.processes = state.processes.map { _ in nil }
                state.watchdog = nil
            }
            return (state.processes.compactMap { $0 }, state.watchdog)
        }
        for process in processes + [watchdog].compactMap({ $0 }) where process.isRunning {
            killProcess(process.processIdentifier)
        }
        for process in processes + [watchdog].compactMap({ $0 }) { process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    // MARK: Processes

    private static func makeCluster(members count: Int, tls: Bool) throws -> EtcdCluster {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("hive-etcd-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/pids", withIntermediateDirectories: true)
        let pki: TestPKI?
        do {
            pki = tls ? try TestPKI.make(in: directory + "/pki") : nil
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let ports = try freePorts(count * 2)
        let members = (0..<count).map { index in
            Member(name: "m\(index)", clientPort: ports[2 * index], peerPort: ports[2 * index + 1], usesTLS: tls)
        }
        return EtcdCluster(directory: directory, members: members, pki: pki)
    }

    private func launch(_ index: Int) throws {
        let member = members[index]
        let initialCluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [
            "--name", member.name,
            "--data-dir", "\(directory)/\(member.name).data",
            "--listen-client-urls", member.clientURL,
            "--advertise-client-urls", member.clientURL,
            "--listen-peer-urls", member.peerURL,
            "--initial-advertise-peer-urls", member.peerURL,
            "--initial-cluster", initialCluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", "hive-test-\(URL(fileURLWithPath: directory).lastPathComponent)",
            // Loopback: quick elections make failover quick.
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        if let pki {
            process.arguments! += [
                "--cert-file", pki.server.certificate, "--key-file", pki.server.key,
                "--client-cert-auth", "--trusted-ca-file", pki.caCertificate,
                "--peer-cert-file", pki.server.certificate, "--peer-key-file", pki.server.key,
                "--peer-client-cert-auth", "--peer-trusted-ca-file", pki.caCertificate,
            ]
        }
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ETCD") }
        let logPath = self.logPath(index)
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        try String(process.processIdentifier).write(toFile: pidPath(index), atomically: true, encoding: .utf8)
        state.withLock { $0.processes[index] = process }
    }

    private func startWatchdog() throws {
        let script = """
            parent() { if [ -r /proc/$$/stat ]; then cut -d' ' -f4 /proc/$$/stat; else ps -o ppid= -p $$ | tr -d ' '; fi; }
            while [ "$(parent)" = "$1" ]; do sleep 0.2; done
            for f in "$2"/pids/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
            rm -rf "$2"
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script, "etcd-watchdog", String(getpid()), directory]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        state.withLock { $0.watchdog = watchdog }
    }

    /// Polls `/health` of the given members until each says healthy; fails
    /// with the members' log tails when one exits or a minute passes.
    private func waitUntilServing(_ indices: some Sequence<Int>) async throws {
        let client = try pki.map { pki in
            try HTTPClient(connectTimeout: .seconds(1), maxIdlePerEndpoint: 1, tls: pki.clientOptions)
        } ?? HTTPClient(connectTimeout: .seconds(1), maxIdlePerEndpoint: 1)
        do {
            try await waitUntilServing(indices, client: client)
        } catch {
            await client.shutDown()
            throw error
        }
        await client.shutDown()
    }

    private func waitUntilServing(_ indices: some Sequence<Int>, client: HTTPClient) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        for index in indices {
            let endpoint = HTTPEndpoint(host: "127.0.0.1", port: members[index].clientPort, usesTLS: pki != nil)
            while true {
                let exited = state.withLock { state in state.processes[index].map { !$0.isRunning } ?? true }
                if exited {
                    throw EtcdClusterError("etcd member \(index) exited during startup\n\(logTails())")
                }
                let request = HTTPRequest(method: .GET, path: "/health", timeout: .seconds(2))
                if let response = try? await client.unary(request, to: endpoint), response.status == .ok,
                   String(decoding: response.body, as: UTF8.self).contains("\"true\"") {
                    break
                }
                if ContinuousClock.now > deadline {
                    throw EtcdClusterError("etcd member \(index) not healthy after 60 s\n\(logTails())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    // MARK: Files

    private func logPath(_ index: Int) -> String { "\(directory)/\(members[index].name).log" }
    private func pidPath(_ index: Int) -> String { "\(directory)/pids/\(members[index].name).pid" }

    private func logs() -> [String] {
        members.indices.map { (try? String(contentsOfFile: logPath($0), encoding: .utf8)) ?? "" }
    }

    /// The last lines of every member's log, for a failure message.
    public func logTails(lines: Int = 25) -> String {
        zip(members, logs()).map { member, log in
            let tail = log.split(separator: "\n").suffix(lines).joined(separator: "\n")
            return "--- \(member.name) (\(member.clientURL)) log tail:\n\(tail)"
        }.joined(separator: "\n")
    }

    /// Ports the kernel just handed out for port 0, all distinct (held open together).
    public static func freePorts(_ count: Int) throws -> [Int] {
        let held = try ClosedPorts(count)
        defer { held.close() }
        return held.ports
    }
}

/// Loopback ports bound but not listening, until `close()`: a connection
/// to one is refused, and no other test can take it meanwhile (a port
/// merely found free may be someone's listener a moment later).
public final class ClosedPorts: @unchecked Sendable {
    public let ports: [Int]
    private var sockets: [Int32]

    public init(_ count: Int) throws {
        var sockets: [Int32] = []
        var ports: [Int] = []
        do {
            for _ in 0..<count {
                #if canImport(Glibc)
                let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                #else
                let socketFD = socket(AF_INET, SOCK_STREAM, 0)
                #endif
                guard socketFD >= 0 else { throw EtcdClusterError("socket() failed: errno \(errno)") }
                sockets.append(socketFD)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                address.sin_port = 0
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let bound = withUnsafeMutablePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                        bind(socketFD, socketAddress, length) == 0 && getsockname(socketFD, socketAddress, &length) == 0
                    }
                }
                guard bound else { throw EtcdClusterError("bind to 127.0.0.1:0 failed: errno \(errno)") }
                ports.append(Int(UInt16(bigEndian: address.sin_port)))
            }
        } catch {
            sockets.forEach { _ = Glibc.close($0) }
            throw error
        }
        self.sockets = sockets
        self.ports = ports
    }

    public func close() {
        sockets.forEach { _ = Glibc.close($0) }
        sockets = []
    }

    deinit { close() }
}

private func killProcess(_ pid: pid_t) {
    _ = kill(pid, SIGKILL)
}

public struct EtcdClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs body with a fresh cluster and always stops it, also when body throws.
public func withEtcdCluster<T>(
    members: Int = 3, tls: Bool = false, _ body: (EtcdCluster) async throws -> T
) async throws -> T {
    let cluster = try await EtcdCluster.start(members: members, tls: tls)
    do {
        let result = try await body(cluster)
        cluster.stop()
        return result
    } catch {
        cluster.stop()
        throw error
    }
}
