import CHiveSystem
import HivePacket
#if canImport(Glibc)
import Glibc
#endif

/// Opening the datapath's sockets, possibly inside another network
/// namespace. A socket keeps the namespace it was created in, so the agent
/// of a sandbox host opens its sockets on a short-lived thread that entered
/// the host's namespace, and then uses them from any thread.
public enum DatapathSockets {
    /// Socket buffers: default sizes (about 212 KB) overflow at line rate.
    public static let bufferBytes: Int32 = 4 << 20

    /// A packet socket on interface `name`: (fd, interface index).
    ///
    /// With `virtioNetHeaders` (what a `LocalPort` needs) each frame comes and
    /// goes with its virtio-net header, so a VM's interface may keep its
    /// offloads: TCP super-frames of up to 64 KB and partial checksums are read
    /// as they are, and written back the same way. Without, frames are whole
    /// (what a test playing a VM's NIC writes).
    public static func openPacketSocket(
        interface name: String, namespace: String? = nil, virtioNetHeaders: Bool = true
    ) throws(SystemError) -> (fd: Int32, interfaceIndex: Int32) {
        try inNamespace(namespace) { () throws(SystemError) in
            var interfaceIndex: Int32 = 0
            let fd = hive_packet_socket_open(name, bufferBytes, virtioNetHeaders ? 1 : 0, &interfaceIndex)
            try SystemError.check(fd, "open packet socket on", "interface \(name)\(namespace.map { " in namespace \($0)" } ?? "")")
            return (fd, interfaceIndex)
        }
    }

    /// Makes the interface of a packet socket promiscuous while the socket
    /// is open: a router port's MAC is not the NIC's, and a real NIC
    /// filters frames to other MACs.
    public static func setPromiscuous(fd: Int32, interfaceIndex: Int32) throws(SystemError) {
        try SystemError.check(hive_packet_socket_promiscuous(fd, interfaceIndex), "set promiscuous mode on", "interface \(interfaceIndex)")
    }

    /// A UDP socket bound to `address`:`port` (port 0 picks one). With
    /// `receiveCoalesced` (UDP_GRO, what the datapath's tunnel socket wants)
    /// a run of datagrams from one sender may arrive as one buffer.
    public static func openUDPSocket(
        address: IPv4.Address, port: UInt16, namespace: String? = nil, receiveCoalesced: Bool = true
    ) throws(SystemError) -> Int32 {
        try inNamespace(namespace) { () throws(SystemError) in
            let fd = hive_udp_socket_open(address.value.bigEndian, port.bigEndian, bufferBytes, receiveCoalesced ? 1 : 0)
            try SystemError.check(fd, "bind UDP socket to", "\(address):\(port)\(namespace.map { " in namespace \($0)" } ?? "")")
            return fd
        }
    }

    /// Datagrams the kernel dropped on a socket since it opened (its receive queue was full).
    public static func kernelDrops(of fd: Int32) throws(SystemError) -> UInt64 {
        let drops = hive_socket_drops(fd)
        guard drops >= 0 else { throw SystemError("getsockopt SO_MEMINFO", "fd \(fd)", code: Int32(-drops)) }
        return UInt64(drops)
    }

    /// The port a UDP socket is bound to.
    public static func boundPort(of fd: Int32) throws(SystemError) -> UInt16 {
        UInt16(try SystemError.check(hive_udp_socket_port(fd), "getsockname", "fd \(fd)"))
    }

    /// Runs `body` on a fresh thread inside network namespace `name`
    /// (`/run/netns/NAME`, as `ip netns` makes them); nil runs it here.
    public static func inNamespace<T>(_ name: String?, _ body: @escaping () throws(SystemError) -> T) throws(SystemError) -> T {
        guard let name else { return try body() }
        let box = ThreadResult<T>()
        let work = {
            let entered = hive_enter_network_namespace("/run/netns/\(name)")
            if entered < 0 {
                box.result = .failure(SystemError("setns into", "network namespace \(name)", code: -entered))
                return
            }
            do throws(SystemError) { box.result = .success(try body()) } catch { box.result = .failure(error) }
        }
        // A dedicated thread: setns changes the calling thread, and this one ends right after.
        let thread: pthread_t
        do { thread = try startThread(work) } catch let error as SystemError { throw error } catch { throw SystemError("pthread_create", name, code: EAGAIN) }
        joinThread(thread)
        switch box.result! {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}

/// Written by the namespace thread, read after join.
final class ThreadResult<T>: @unchecked Sendable {
    var result: Result<T, SystemError>?
}
