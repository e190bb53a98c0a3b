import Foundation
import HiveModel
import HivePacket
import HiveSimulation

/// A MAC or ARP entry one host learned, as it travels to the others.
enum SharedLearning: Hashable, Sendable {
    case mac(MACLearning)
    case arp(ARPLearning)
}

/// Learned entries sent straight from the host that learned them to the
/// hosts that may simulate through the same devices, on the flow-state
/// channel (Geneve, the reserved flow-state key), so learning works while
/// the NSDB is unreachable. A first byte no flow-state message uses tells
/// them apart:
///
///     version (1) = 0x81, count (1), reserved (2), then `count` entries of 44 bytes:
///     kind (1: 1 MAC, 2 ARP), reserved (1), device id (16: the bridge or router),
///     MAC (6), IPv4 address (4: ARP only), port id (16: MAC only)
///
/// Big-endian; ids are the UUIDs' 16 bytes.
enum LearnedStateMessage {
    static let version: UInt8 = 0x81
    static let entryLength = 44
    /// 32 entries make 1,412 bytes: one datagram inside a 1,500-byte underlay.
    static let maximumEntries = 32

    static func messages(_ entries: [SharedLearning]) -> [[UInt8]] {
        stride(from: 0, to: entries.count, by: maximumEntries).map {
            encode(entries[$0..<min(entries.count, $0 + maximumEntries)])
        }
    }

    /// One message of (at most `maximumEntries` of) `entries`.
    static func encode(_ entries: ArraySlice<SharedLearning>) -> [UInt8] {
        let count = min(entries.count, maximumEntries)
        var bytes: [UInt8] = [version, UInt8(count), 0, 0]
        bytes.reserveCapacity(4 + count * entryLength)
        func append(_ uuid: UUID) { withUnsafeBytes(of: uuid.uuid) { bytes += $0 } }
        func append(_ mac: EthernetAddress) { for shift in stride(from: 40, through: 0, by: -8) { bytes.append(UInt8(mac.value >> UInt64(shift) & 0xFF)) } }
        let none = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        for entry in entries.prefix(count) {
            switch entry {
            case .mac(let learned):
                bytes += [1, 0]
                append(learned.bridge.uuid)
                append(learned.mac)
                bytes += [0, 0, 0, 0]
                append(learned.port.uuid)
            case .arp(let learned):
                bytes += [2, 0]
                append(learned.router.uuid)
                append(learned.mac)
                let address = learned.address.value
                bytes += [UInt8(address >> 24), UInt8(address >> 16 & 0xFF), UInt8(address >> 8 & 0xFF), UInt8(address & 0xFF)]
                append(none)
            }
        }
        return bytes
    }

    /// The entries of a message; nil when it is malformed (short, another
    /// version, an unknown kind), so nothing of it is applied.
    static func decode(_ payload: UnsafeRawBufferPointer) -> [SharedLearning]? {
        guard payload.count >= 4, payload[0] == version else { return nil }
        let count = Int(payload[1])
        guard count <= maximumEntries, payload.count >= 4 + count * entryLength else { return nil }
        func uuid(_ offset: Int) -> UUID {
            var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[offset..<offset + 16])) }
            return UUID(uuid: raw)
        }
        func mac(_ offset: Int) -> EthernetAddress {
            EthernetAddress((0..<6).reduce(UInt64(0)) { $0 << 8 | UInt64(payload[offset + $1]) })
        }
        var entries: [SharedLearning] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            let base = 4 + index * entryLength
            switch payload[base] {
            case 1:
                entries.append(.mac(MACLearning(bridge: BridgeID(uuid(base + 2)), mac: mac(base + 18), port: PortID(uuid(base + 28)))))
            case 2:
                let address = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(payload[base + 24 + $1]) }
                entries.append(.arp(ARPLearning(router: RouterID(uuid(base + 2)), address: IPv4.Address(address), mac: mac(base + 18))))
            default:
                return nil
            }
        }
        return entries
    }
}
