#if os(Linux)
import Foundation
import Glibc
import HiveDatapath
import HivePacket
import Testing

/// The kernel's drops on the tunnel socket are what the datapath reports.
@Suite struct SocketDropTests {
    @Test func aTunnelSocketNobodyReadsCountsWhatItDropped() throws {
        let receiver = try DatapathSockets.openUDPSocket(address: IPv4.Address(127, 0, 0, 1), port: 0)
        defer { DatapathSockets.close(receiver) }
        let port = try DatapathSockets.boundPort(of: receiver)
        #expect(try DatapathSockets.kernelDrops(of: receiver) == 0)

        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(sender >= 0)
        defer { close(sender) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        // Several times the 4 MB receive buffer, never read.
        let payload = [UInt8](repeating: 0xAB, count: 1400)
        for _ in 0..<12_000 {
            _ = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        #expect(try DatapathSockets.kernelDrops(of: receiver) > 0)
    }
}
#endif
