// Connection tracking's key, and a cached flow's record of a connection:
// shared by the simulation (its table) and the datapath (the connections a
// cached flow checks on each hit).

/// A connection's identity in one direction: zone, protocol, addresses and
/// ports (ICMP echo: the identifier in both port fields, so a request and
/// its reply are each other's reverse).
public struct ConnectionKey: Hashable, Sendable {
    public var zone: UInt32
    public var source: IPv4.Address
    public var destination: IPv4.Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var ipProtocol: UInt8

    public init(zone: UInt32, source: IPv4.Address, destination: IPv4.Address, sourcePort: UInt16, destinationPort: UInt16, ipProtocol: UInt8) {
        self.zone = zone
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.ipProtocol = ipProtocol
    }

    // Three values into the hasher instead of six fields: lookups are on the miss path of every new flow.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(source.value) << 32 | UInt64(destination.value))
        hasher.combine(UInt64(zone) << 32 | UInt64(sourcePort) << 16 | UInt64(destinationPort))
        hasher.combine(ipProtocol)
    }

    /// The key of the other direction.
    @inlinable
    public var reversed: ConnectionKey {
        ConnectionKey(zone: zone, source: destination, destination: source, sourcePort: destinationPort, destinationPort: sourcePort, ipProtocol: ipProtocol)
    }

    /// A stable 64-bit name for the connection (of its original-direction
    /// key): the flows' invalidation tag.
    public var tag: UInt64 {
        var value = UInt64(zone) &* 0x9E37_79B9_7F4A_7C15
        value ^= (UInt64(source.value) << 32 | UInt64(destination.value)) &* 0xC2B2_AE3D_27D4_EB4F
        value ^= (UInt64(sourcePort) << 24 | UInt64(destinationPort) << 8 | UInt64(ipProtocol)) &* 0x1656_67B1_9E37_79F9
        return value
    }
}

extension ConnectionKey: CustomStringConvertible {
    public var description: String {
        "zone \(zone) proto \(ipProtocol) \(source):\(sourcePort) > \(destination):\(destinationPort)"
    }
}

/// A connection a cached flow's decision depended on, as the handler's
/// connection table had it: the datapath keeps it with the flow and hands it
/// back on every hit (`UpcallHandler.track`), so connection tracking sees
/// the cached packets too (a TCP connection's ACKs and FINs ride the flow
/// its first packet installed) and a packet whose connection moved where
/// the flow does not hold is simulated again.
public struct FlowConnection: Hashable, Sendable {
    /// The packet's key in the connection's zone (after the NAT before it).
    public var key: ConnectionKey
    /// The packet goes the connection's reply way.
    public var isReply: Bool
    /// The entry's slot and generation when the flow was decided; slot -1:
    /// there was none (a hit then expects none).
    public var slot: Int32
    public var generation: UInt64
    /// The connection states the flow's actions hold for, as the handler
    /// encodes them (bit n: the states whose raw value is n).
    public var validStates: UInt32

    public init(key: ConnectionKey, isReply: Bool, slot: Int32, generation: UInt64, validStates: UInt32) {
        self.key = key
        self.isReply = isReply
        self.slot = slot
        self.generation = generation
        self.validStates = validStates
    }
}
