import HiveModel
import HivePacket

// Connection tracking: which connection a packet belongs to, in which
// direction, and in what state, per zone (the port or device where
// tracking happens).
//
// The simulation reads the table (a packet's state is a pure function of
// the table and the packet) and reports what it observed; the agent applies
// the observations after the simulation, when the packet is forwarded
// (Linux's "confirm" on accept). The table is owned by one thread, the
// datapath's, like the flow table: no locks.
//
// Flows and connections. A cached flow carries a tag of each connection its
// simulation observed; a state change that a rule could see (the first
// reply, FIN, RST, a new connection on a closed one) invalidates the tag, so
// the next packet in each direction is simulated again. TCP flags are part
// of the flow key, so SYN, FIN and RST packets are simulated anyway. Flows of
// a tracked connection live at most half the connection's timeout: each new
// simulation refreshes the entry, so a busy cached flow keeps its
// connection alive and a cached flow never outlives it.

/// The states a packet is in, as rules match them (`ConnectionState`): a
/// reply is also established.
public struct ConnectionStates: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let new = ConnectionStates(rawValue: 1 << 0)
    public static let established = ConnectionStates(rawValue: 1 << 1)
    public static let related = ConnectionStates(rawValue: 1 << 2)
    public static let reply = ConnectionStates(rawValue: 1 << 3)
    public static let invalid = ConnectionStates(rawValue: 1 << 4)

    public init(_ state: ConnectionState) {
        switch state {
        case .new: self = .new
        case .established: self = .established
        case .related: self = .related
        case .reply: self = .reply
        case .invalid: self = .invalid
        }
    }

    /// Passes a stateful filter without a rule: replies and later packets of
    /// allowed connections, and errors about them.
    public var isAllowedByState: Bool { !isDisjoint(with: [.established, .related]) }
}

extension ConnectionStates: CustomStringConvertible {
    public var description: String {
        ConnectionState.allCases.filter { contains(ConnectionStates($0)) }.map(\.rawValue).joined(separator: "+")
    }
}

/// TCP connection states, Linux nf_conntrack's.
public enum TCPConnectionState: UInt8, Sendable, CaseIterable {
    case none = 0
    case synSent, synReceived, established, finWait, closeWait, lastAck, timeWait, close

    public var name: String {
        switch self {
        case .none: "NONE"
        case .synSent: "SYN_SENT"
        case .synReceived: "SYN_RECV"
        case .established: "ESTABLISHED"
        case .finWait: "FIN_WAIT"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        }
    }
}

/// How long an entry lives without a packet, by protocol and state
/// (nanoseconds); Linux's defaults.
public struct ConnectionTimeouts: Sendable {
    public var tcp: [UInt64]
    public var udpUnreplied: UInt64
    public var udpReplied: UInt64
    public var icmp: UInt64
    public var other: UInt64

    static let second: UInt64 = 1_000_000_000

    public init() {
        var tcp = [UInt64](repeating: 0, count: TCPConnectionState.allCases.count)
        let seconds: [(TCPConnectionState, UInt64)] = [
            (.none, 10), (.synSent, 120), (.synReceived, 60), (.established, 432_000), (.finWait, 120),
            (.closeWait, 60), (.lastAck, 30), (.timeWait, 120), (.close, 10),
        ]
        for (state, value) in seconds { tcp[Int(state.rawValue)] = value * Self.second }
        self.tcp = tcp
        udpUnreplied = 30 * Self.second
        udpReplied = 120 * Self.second
        icmp = 30 * Self.second
        other = 600 * Self.second
    }

    public static let linux = ConnectionTimeouts()

    func timeout(of entry: ConnectionEntry) -> UInt64 {
        switch entry.key.ipProtocol {
        case IPProtocolNumber.tcp: tcp[Int(entry.tcpState.rawValue)]
        case IPProtocolNumber.udp: entry.replied ? udpReplied : udpUnreplied
        case IPProtocolNumber.icmp: icmp
        default: other
        }
    }
}

/// One tracked connection.
public struct ConnectionEntry: Sendable {
    /// The original direction: the first packet's.
    public var key: ConnectionKey
    /// What the reply direction looks like: `key.reversed`, unless NAT
    /// translated the connection (then its source is the translated
    /// destination and its destination the translated source).
    public var replyKey: ConnectionKey
    public var tcpState: TCPConnectionState
    /// Traffic was seen in the reply direction.
    public var replied: Bool
    /// TCP: the direction whose FIN came first (0 none, 1 original, 2 reply).
    public var finFrom: UInt8
    /// The port whose packet created the entry: its per-port count.
    public var owner: UInt32
    /// The table's clock when the entry expires.
    public var deadline: UInt64
    public var created: UInt64
    /// Which of the entries its slot held this one is (the table counts
    /// creations): a cached flow names its connection by slot and generation.
    public internal(set) var generation: UInt64
    var live: Bool
    // The list of unreplied entries, oldest first: early drop takes its head.
    var previous: Int32
    var next: Int32

    public init(
        key: ConnectionKey, replyKey: ConnectionKey? = nil, tcpState: TCPConnectionState = .none, replied: Bool = false, finFrom: UInt8 = 0,
        owner: UInt32 = 0
    ) {
        self.key = key
        self.replyKey = replyKey ?? key.reversed
        self.tcpState = tcpState
        self.replied = replied
        self.finFrom = finFrom
        self.owner = owner
        deadline = 0
        created = 0
        generation = 0
        live = true
        previous = -1
        next = -1
    }

    /// NAT translated the connection.
    @inlinable
    public var isTranslated: Bool { replyKey != key.reversed }

    /// A UDP, ICMP echo or other datagram's states in the connection, going
    /// the reply way or not: new until a reply is seen.
    public func datagramStates(isReply: Bool) -> ConnectionStates {
        isReply ? [.established, .reply] : replied ? .established : .new
    }

    /// SNAT translated the connection: its source shows as the reply's
    /// destination (a DNAT-only entry keeps its source there).
    public var isSourceTranslated: Bool { replyKey.destination != key.source || replyKey.destinationPort != key.sourcePort }

    /// The addresses and ports a packet of this connection leaves the NAT
    /// with: for the original direction the reverse of the reply key, for
    /// the reply direction the reverse of the original key.
    @inlinable
    public func translated(isReply: Bool) -> ConnectionKey { isReply ? key.reversed : replyKey.reversed }
}

/// What a simulation saw of one zone: the packet's key there, the entry it
/// found (and in which direction), and the states it matched.
public struct ConnectionObservation: Sendable {
    public var key: ConnectionKey
    /// The entry's slot, or -1: none (a new connection, or untracked).
    public var slot: Int32
    public var isReply: Bool
    public var states: ConnectionStates
    /// The port that sent the packet into the topology (the owner of a new entry).
    public var owner: UInt32
    /// The connection's original-direction key.
    public var originalKey: ConnectionKey
    /// A new connection's reply key: `key.reversed`, or what NAT made it.
    public var replyKey: ConnectionKey

    public init(
        key: ConnectionKey, slot: Int32, isReply: Bool, states: ConnectionStates, owner: UInt32, originalKey: ConnectionKey? = nil,
        replyKey: ConnectionKey? = nil
    ) {
        self.key = key
        self.slot = slot
        self.isReply = isReply
        self.states = states
        self.owner = owner
        self.originalKey = originalKey ?? (isReply ? key.reversed : key)
        self.replyKey = replyKey ?? self.originalKey.reversed
    }

    /// NAT translated the connection (or, for a new one, is translating it).
    public var isTranslated: Bool { replyKey != originalKey.reversed }

    /// A decision read the exact states (a rule's connection-state
    /// condition, a security group's refusal): a flow holds for them alone.
    /// Otherwise a new connection's flow holds once it is established too
    /// (a security group accepts by rule what it would accept by state).
    public var stateDecides = false

    /// The states a cached flow of this observation holds for, as
    /// `FlowConnection.validStates` encodes them.
    public var validStates: UInt32 {
        let exact = UInt32(1) << UInt32(states.rawValue)
        guard states == .new, !stateDecides else { return exact }
        return exact | UInt32(1) << UInt32(ConnectionStates.established.rawValue)
    }
}

/// What a TCP packet's flags say, for the state machine.
enum TCPEvent {
    case syn, synAck, fin, ack, rst, invalid

    /// Linux's valid flag combinations (ECN and PSH/URG aside): anything else,
    /// SYN+FIN, SYN+RST, no flags, FIN without ACK, is invalid.
    init(_ flags: TCP.Flags) {
        let core = flags.intersection([.syn, .fin, .rst, .ack])
        switch core {
        case [.syn]: self = .syn
        case [.syn, .ack]: self = .synAck
        case [.rst], [.rst, .ack]: self = .rst
        case [.fin, .ack]: self = .fin
        case [.ack]: self = .ack
        default: self = .invalid
        }
    }
}

/// The TCP state machine on one packet: the states the packet is in and the
/// entry's next state; nil next state: the packet is invalid.
func tcpTransition(_ entry: ConnectionEntry?, isReply: Bool, flags: TCP.Flags) -> (states: ConnectionStates, next: TCPConnectionState?) {
    let event = TCPEvent(flags)
    guard let entry else {
        return event == .syn ? (.new, .synSent) : (.invalid, nil)
    }
    let direction: UInt8 = isReply ? 2 : 1
    let other: UInt8 = isReply ? 1 : 2
    let seen: ConnectionStates = isReply ? [.established, .reply] : (entry.replied ? .established : .new)
    let state = entry.tcpState
    switch event {
    case .invalid:
        return (.invalid, nil)
    case .rst:
        return (seen, .close)
    case .syn:
        if isReply { return (.invalid, nil) }
        switch state {
        case .synSent: return (.new, .synSent)
        // A new connection on the same addresses and ports once a FIN was
        // seen: the closing ACK was lost or rode a cached flow, or the
        // hosts' FIN messages crossed and left both ends in FIN_WAIT (a
        // client reusing ports, TIME_WAIT reuse, must not be held for the
        // entry's 120 s).
        case .finWait, .closeWait, .lastAck, .timeWait, .close: return (.new, .synSent)
        default: return (.invalid, nil)
        }
    case .synAck:
        guard isReply else { return (.invalid, nil) }
        switch state {
        case .synSent, .synReceived: return ([.established, .reply], .synReceived)
        case .established: return ([.established, .reply], .established)
        default: return (.invalid, nil)
        }
    case .ack:
        switch state {
        case .synSent: return (.invalid, nil)
        case .synReceived: return (seen, isReply ? .synReceived : .established)
        case .finWait: return (seen, entry.finFrom == other ? .closeWait : .finWait)
        case .lastAck: return (seen, entry.finFrom == direction ? .timeWait : .lastAck)
        case .none: return (.invalid, nil)
        default: return (seen, state)
        }
    case .fin:
        switch state {
        case .synReceived, .established: return (seen, .finWait)
        case .finWait, .closeWait: return (seen, entry.finFrom == other ? .lastAck : state)
        case .lastAck, .timeWait, .close: return (seen, state)
        case .synSent, .none: return (.invalid, nil)
        }
    }
}

/// The connection table of one agent: entries by either direction's key,
/// bounded in total and per port, with Linux's early drop (the oldest
/// connection that never saw a reply makes room).
///
/// Owned by one thread (the datapath's). Lookups do not allocate; creating
/// an entry may grow the index.
public struct ConnectionTable: Sendable {
    public private(set) var entries: [ConnectionEntry] = []
    private var index: [ConnectionKey: Int32] = [:]
    private var freeSlots: [Int32] = []
    private var perOwner: [UInt32: Int32] = [:]
    /// Source-translated TCP and UDP connections per SNAT block and remote
    /// end (`blockUseKey`): a new translation skips the blocks whose every
    /// port that remote end already uses, instead of probing each port.
    private var blockUse: [ConnectionKey: UInt16] = [:]
    /// Entries created so far: the next one's generation.
    private var generations: UInt64 = 0
    private var unrepliedHead: Int32 = -1
    private var unrepliedTail: Int32 = -1
    public let capacity: Int
    public let capacityPerPort: Int
    public var timeouts: ConnectionTimeouts

    /// What the table did, for metrics.
    public struct Counters: Sendable {
        public var created: UInt64 = 0
        public var deleted: UInt64 = 0
        public var expired: UInt64 = 0
        /// Unreplied entries evicted to make room.
        public var earlyDropped: UInt64 = 0
        /// New connections refused: the table or the port was full of replied connections.
        public var refusedTableFull: UInt64 = 0
        public var refusedPortFull: UInt64 = 0
        public var invalid: UInt64 = 0
        /// Entries installed from another host's flow-state messages (or the state file at start).
        public var imported: UInt64 = 0
        /// New translated connections refused: their reply key was in use.
        public var translationCollisions: UInt64 = 0

        public init() {}
    }
    public var counters = Counters()

    public init(capacity: Int = 262_144, capacityPerPort: Int = 65_536, timeouts: ConnectionTimeouts = .linux) {
        precondition(capacity > 0 && capacityPerPort > 0, "a connection table holds at least one entry")
        self.capacity = capacity
        self.capacityPerPort = capacityPerPort
        self.timeouts = timeouts
    }

    public static let empty = ConnectionTable(capacity: 1, capacityPerPort: 1)

    public var count: Int { entries.count - freeSlots.count }

    /// The entries alive at `now`.
    public func liveEntries(now: UInt64) -> [ConnectionEntry] {
        entries.filter { $0.live && $0.deadline > now }
    }

    /// The live entry for `key` in either direction at time `now`.
    /// - Complexity: O(1), one hash; no allocation.
    public func lookup(_ key: ConnectionKey, now: UInt64) -> (slot: Int32, isReply: Bool)? {
        guard let slot = index[key] else { return nil }
        let entry = entries[Int(slot)]
        guard entry.live, entry.deadline > now else { return nil }
        return (slot, entry.key != key)
    }

    /// How many ports of SNAT block `block` of `replyKey`'s destination
    /// address the remote end of `replyKey` (its source) uses (its
    /// destination port is not read): entries not yet swept count too, so a
    /// block this says is full may have a port that expired a moment ago.
    /// - Complexity: O(1), one hash; no allocation.
    public func sourceTranslations(inBlock block: UInt16, toward replyKey: ConnectionKey) -> Int {
        var use = replyKey
        use.destinationPort = block
        return Int(blockUse[use] ?? 0)
    }

    /// A source-translated TCP or UDP entry's reply key with its SNAT
    /// port's block in place of the port; nil for any other entry.
    private static func blockUseKey(of entry: ConnectionEntry) -> ConnectionKey? {
        guard entry.key.ipProtocol == IPProtocolNumber.tcp || entry.key.ipProtocol == IPProtocolNumber.udp,
              entry.isSourceTranslated
        else { return nil }
        var use = entry.replyKey
        use.destinationPort = NATBlock.of(use.destinationPort)
        return use
    }

    public func entry(_ slot: Int32) -> ConnectionEntry? {
        guard slot >= 0, Int(slot) < entries.count, entries[Int(slot)].live else { return nil }
        return entries[Int(slot)]
    }

    /// Applies what a forwarded packet showed: creates the connection, moves
    /// its state, refreshes its deadline. Returns the entry's slot and
    /// whether its state changed in a way a cached flow must see (the
    /// connection's flows are then invalidated); nil slot: not tracked (an
    /// invalid or related packet, or no room).
    public mutating func apply(_ observation: ConnectionObservation, tcpFlags: TCP.Flags, now: UInt64) -> (slot: Int32?, changed: Bool) {
        if observation.states.contains(.invalid) || observation.states.contains(.related) { return (nil, false) }
        let key = observation.key
        var existing: ConnectionEntry?
        var slot: Int32 = -1
        var isReply = false
        // Looked up again rather than trusting `observation.slot`: an observation
        // may be made by hand (tools, benchmarks) with slot -1 for a key the table
        // has, and creating it twice would leave a stale entry behind the index.
        if let found = lookup(key, now: now) {
            slot = found.slot
            isReply = found.isReply
            existing = entries[Int(slot)]
        }
        if key.ipProtocol == IPProtocolNumber.tcp {
            let (_, next) = tcpTransition(existing, isReply: isReply, flags: tcpFlags)
            guard let next else {
                counters.invalid &+= 1
                return (nil, false)
            }
            if let entry = existing {
                // A SYN on a closing or closed connection opens a new one.
                if next == .synSent, entry.tcpState != .synSent {
                    remove(slot: slot)
                    return create(ConnectionEntry(key: key, replyKey: entry.replyKey, tcpState: .synSent, owner: observation.owner), now: now)
                }
                let (previous, wasReplied) = move(slot, isReply: isReply, to: next, now: now)
                return (slot, Self.flowsMustSee(from: previous, replied: wasReplied, to: next, replied: wasReplied || isReply))
            }
            return create(ConnectionEntry(key: key, replyKey: observation.replyKey, tcpState: next, owner: observation.owner), now: now)
        }
        if let entry = existing {
            _ = move(slot, isReply: isReply, to: entry.tcpState, now: now)
            return (slot, false)
        }
        return create(ConnectionEntry(key: key, replyKey: observation.replyKey, owner: observation.owner), now: now)
    }

    /// Whether a change must reach the connection's cached flows at once
    /// (they are removed): a reset, a new connection on the same addresses.
    /// Other changes, the first reply above all, reach them on their next
    /// hit (`allows`), which sends a packet in states its flow does not hold
    /// for to the simulation; the closing handshake's steps move the entry
    /// on the cached path.
    static func flowsMustSee(from previous: TCPConnectionState, replied wasReplied: Bool, to next: TCPConnectionState, replied: Bool) -> Bool {
        if next == .close, previous != .close { return true }
        return next == .synSent && previous != .synSent && previous != .none
    }

    // MARK: Cached packets

    /// Whether a packet of a cached flow (of its `connection`, with TCP
    /// `flags`) is in states the flow holds for. False, the packet is
    /// simulated: the entry the flow saw is gone or replaced (or one
    /// appeared where there was none), the packet's states are not the
    /// flow's, or it is a TCP packet whose change is the simulation's to make
    /// on an entry (a SYN or SYN-ACK sends its flow state again, a RST
    /// closes, an invalid one is counted).
    /// - Complexity: O(1); no allocation.
    public func allows(_ connection: FlowConnection, flags: TCP.Flags, now: UInt64) -> Bool {
        let states: ConnectionStates
        let isTCP = connection.key.ipProtocol == IPProtocolNumber.tcp
        if connection.slot < 0 {
            guard lookup(connection.key, now: now) == nil else { return false }
            // With no entry, only a TCP packet's flags can change its states.
            guard isTCP else { return true }
            states = tcpTransition(nil, isReply: false, flags: flags).states
        } else {
            guard let entry = current(connection, now: now) else { return false }
            if isTCP {
                switch TCPEvent(flags) {
                case .ack, .fin: break
                case .syn, .synAck, .rst, .invalid: return false
                }
                let (seen, next) = tcpTransition(entry, isReply: connection.isReply, flags: flags)
                guard next != nil else { return false }
                states = seen
            } else {
                states = entry.datagramStates(isReply: connection.isReply)
            }
        }
        return connection.validStates & UInt32(1) << UInt32(states.rawValue) != 0
    }

    /// Moves the connection on for a packet of a cached flow that `allows`
    /// it and forwards, as `apply` does for a simulated one; returns the
    /// entry when other hosts must hear of the change (a FIN, the first reply).
    /// - Complexity: O(1); no allocation.
    public mutating func advance(_ connection: FlowConnection, flags: TCP.Flags, now: UInt64) -> ConnectionEntry? {
        guard connection.slot >= 0, let entry = current(connection, now: now) else { return nil }
        var next = entry.tcpState
        if connection.key.ipProtocol == IPProtocolNumber.tcp {
            guard let moved = tcpTransition(entry, isReply: connection.isReply, flags: flags).next else { return nil }
            next = moved
        }
        let (previous, wasReplied) = move(connection.slot, isReply: connection.isReply, to: next, now: now)
        let firstReply = connection.isReply && !wasReplied
        let finished = next != previous && TCPEvent(flags) == .fin
        return firstReply || finished ? entries[Int(connection.slot)] : nil
    }

    /// The entry a cached flow saw, if it is still there.
    private func current(_ connection: FlowConnection, now: UInt64) -> ConnectionEntry? {
        guard Int(connection.slot) < entries.count else { return nil }
        let entry = entries[Int(connection.slot)]
        guard entry.live, entry.generation == connection.generation, entry.deadline > now else { return nil }
        return entry
    }

    /// Installs or overwrites an entry another host sent (flow state).
    public mutating func install(_ incoming: ConnectionEntry, now: UInt64) -> (slot: Int32?, changed: Bool) {
        counters.imported &+= 1
        if let found = lookup(incoming.key, now: now), !found.isReply {
            var entry = entries[Int(found.slot)]
            let changed = Self.flowsMustSee(
                from: entry.tcpState, replied: entry.replied, to: incoming.tcpState, replied: entry.replied || incoming.replied)
            let wasReplied = entry.replied
            entry.tcpState = incoming.tcpState
            entry.replied = entry.replied || incoming.replied
            entry.finFrom = incoming.finFrom
            if entry.replyKey == incoming.replyKey {
                update(found.slot, to: entry, now: now, wasReplied: wasReplied)
                return (found.slot, changed)
            }
            // Another translation for the same connection: the sender's is newer.
            remove(slot: found.slot)
        }
        for key in [incoming.key, incoming.replyKey] {
            if let stale = index[key] { remove(slot: stale) }
        }
        return (create(incoming, now: now).slot, true)
    }

    /// Removes entries past their deadline; returns the tags of the
    /// connections removed (their flows go too).
    /// - Complexity: O(entries).
    public mutating func expire(now: UInt64, into tags: inout [UInt64]) {
        for slot in entries.indices where entries[slot].live && entries[slot].deadline <= now {
            tags.append(entries[slot].key.tag)
            remove(slot: Int32(slot))
            counters.expired &+= 1
        }
    }

    /// Removes the connections of `zone` translated to or from `address`
    /// (a floating IP that moved: its VM's connections end, as Neutron
    /// flushes them); returns their tags in `tags`.
    /// - Complexity: O(entries).
    public mutating func flush(zone: UInt32, translatedAddress address: IPv4.Address, into tags: inout [UInt64]) {
        flush(into: &tags) { entry in
            entry.key.zone == zone && entry.isTranslated && (entry.key.destination == address || entry.replyKey.destination == address)
        }
    }

    /// Removes the connections of `zone` (a port's when it is deleted), or all.
    public mutating func flush(zone: UInt32? = nil, into tags: inout [UInt64]) {
        flush(into: &tags) { zone == nil || $0.key.zone == zone }
    }

    /// Removes the live entries `matching` picks; their tags go in `tags`.
    /// - Complexity: O(entries).
    private mutating func flush(into tags: inout [UInt64], where matching: (ConnectionEntry) -> Bool) {
        for slot in entries.indices where entries[slot].live && matching(entries[slot]) {
            tags.append(entries[slot].key.tag)
            remove(slot: Int32(slot))
        }
    }

    // MARK: Storage

    private mutating func create(_ fresh: ConnectionEntry, now: UInt64) -> (slot: Int32?, changed: Bool) {
        // A translation whose reply another connection already uses would
        // steal that connection's replies: refused (the sender retries and
        // the simulation picks another port).
        if let taken = index[fresh.replyKey], entries[Int(taken)].live, entries[Int(taken)].deadline > now {
            counters.translationCollisions &+= 1
            return (nil, false)
        }
        if perOwner[fresh.owner, default: 0] >= Int32(capacityPerPort), !evictUnreplied(owner: fresh.owner) {
            counters.refusedPortFull &+= 1
            return (nil, false)
        }
        if count >= capacity, !evictUnreplied(owner: nil) {
            counters.refusedTableFull &+= 1
            return (nil, false)
        }
        var entry = fresh
        entry.live = true
        entry.created = now
        generations &+= 1
        entry.generation = generations
        entry.deadline = now &+ timeouts.timeout(of: entry)
        entry.previous = -1
        entry.next = -1
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            entries[Int(slot)] = entry
        } else {
            slot = Int32(entries.count)
            entries.append(entry)
        }
        index[entry.key] = slot
        index[entry.replyKey] = slot
        perOwner[entry.owner, default: 0] += 1
        if let use = Self.blockUseKey(of: entry) { blockUse[use, default: 0] &+= 1 }
        if !entry.replied { appendUnreplied(slot) }
        counters.created &+= 1
        return (slot, true)
    }

    /// Moves the entry in `slot` to TCP state `next` for a packet going the
    /// reply way or not; returns the state it had and whether it had seen a reply.
    private mutating func move(_ slot: Int32, isReply: Bool, to next: TCPConnectionState, now: UInt64) -> (
        previous: TCPConnectionState, wasReplied: Bool
    ) {
        var entry = entries[Int(slot)]
        let wasReplied = entry.replied
        let previous = entry.tcpState
        if isReply { entry.replied = true }
        if next == .finWait, previous != .finWait { entry.finFrom = isReply ? 2 : 1 }
        entry.tcpState = next
        update(slot, to: entry, now: now, wasReplied: wasReplied)
        return (previous, wasReplied)
    }

    private mutating func update(_ slot: Int32, to entry: ConnectionEntry, now: UInt64, wasReplied: Bool) {
        entries[Int(slot)].tcpState = entry.tcpState
        entries[Int(slot)].replied = entry.replied
        entries[Int(slot)].finFrom = entry.finFrom
        entries[Int(slot)].deadline = now &+ timeouts.timeout(of: entries[Int(slot)])
        if entry.replied, !wasReplied { unlinkUnreplied(slot) }
    }

    private mutating func remove(slot: Int32) {
        let position = Int(slot)
        guard entries[position].live else { return }
        let entry = entries[position]
        if index[entry.key] == slot { index[entry.key] = nil }
        if index[entry.replyKey] == slot { index[entry.replyKey] = nil }
        if !entry.replied { unlinkUnreplied(slot) }
        if let owned = perOwner[entry.owner] { perOwner[entry.owner] = owned > 1 ? owned - 1 : nil }
        if let use = Self.blockUseKey(of: entry), let used = blockUse[use] { blockUse[use] = used > 1 ? used - 1 : nil }
        entries[position].live = false
        freeSlots.append(slot)
        counters.deleted &+= 1
    }

    /// Early drop: the oldest unreplied entry (of `owner`, when given; a
    /// bounded scan, as Linux's) makes room. False: none found.
    private mutating func evictUnreplied(owner: UInt32?) -> Bool {
        var slot = unrepliedHead
        var scanned = 0
        while slot >= 0, scanned < 256 {
            if owner == nil || entries[Int(slot)].owner == owner {
                remove(slot: slot)
                counters.earlyDropped &+= 1
                return true
            }
            slot = entries[Int(slot)].next
            scanned += 1
        }
        return false
    }

    private mutating func appendUnreplied(_ slot: Int32) {
        entries[Int(slot)].previous = unrepliedTail
        entries[Int(slot)].next = -1
        if unrepliedTail >= 0 { entries[Int(unrepliedTail)].next = slot } else { unrepliedHead = slot }
        unrepliedTail = slot
    }

    private mutating func unlinkUnreplied(_ slot: Int32) {
        let previous = entries[Int(slot)].previous
        let next = entries[Int(slot)].next
        guard previous >= 0 || next >= 0 || unrepliedHead == slot else { return }
        if previous >= 0 { entries[Int(previous)].next = next } else { unrepliedHead = next }
        if next >= 0 { entries[Int(next)].previous = previous } else { unrepliedTail = previous }
        entries[Int(slot)].previous = -1
        entries[Int(slot)].next = -1
    }

    /// The timeout of the entry in `slot` as it is now.
    public func timeout(of slot: Int32) -> UInt64 { timeouts.timeout(of: entries[Int(slot)]) }
}

/// Connection entries as one host sends them to another (Hive's flow-state
/// message, the payload of a Geneve packet on the reserved flow-state key):
///
///     version (1) = 2, count (1), reserved (2), then `count` entries of 36 bytes:
///     zone (4), source (4), destination (4), source port (2), destination port (2),
///     protocol (1), TCP state (1), flags (1: bit 0 replied, bits 1-2 first FIN's direction),
///     reserved (1), owner port key (4),
///     reply source (4), reply destination (4), reply source port (2), reply destination port (2)
///
/// The reply fields carry a NAT binding (they are the original key reversed
/// when nothing was translated). Big-endian. The receiver sets the deadline
/// from its own clock and the entry's state: clocks are not compared across
/// hosts. Version 1 (24-byte entries without the reply fields) is still read.
public enum FlowStateMessage {
    public static let version: UInt8 = 2
    public static let entryLength = 36
    static let version1EntryLength = 24
    /// Entries per message: a packet crosses a few zones.
    public static let maximumEntries = 32

    /// The messages that carry `entries`, `maximumEntries` at most in each.
    public static func messages(_ entries: [ConnectionEntry]) -> [[UInt8]] {
        stride(from: 0, to: entries.count, by: maximumEntries).map {
            encode(Array(entries[$0..<min(entries.count, $0 + maximumEntries)]))
        }
    }

    /// One message of the first `maximumEntries` entries.
    public static func encode(_ entries: [ConnectionEntry]) -> [UInt8] {
        let count = min(entries.count, maximumEntries)
        var bytes: [UInt8] = [version, UInt8(count), 0, 0]
        bytes.reserveCapacity(4 + count * entryLength)
        func append32(_ value: UInt32) { bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        func append16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        for entry in entries.prefix(count) {
            append32(entry.key.zone)
            append32(entry.key.source.value)
            append32(entry.key.destination.value)
            append16(entry.key.sourcePort)
            append16(entry.key.destinationPort)
            bytes.append(entry.key.ipProtocol)
            bytes.append(entry.tcpState.rawValue)
            bytes.append((entry.replied ? 1 : 0) | (entry.finFrom & 0x3) << 1)
            bytes.append(0)
            append32(entry.owner)
            append32(entry.replyKey.source.value)
            append32(entry.replyKey.destination.value)
            append16(entry.replyKey.sourcePort)
            append16(entry.replyKey.destinationPort)
        }
        return bytes
    }

    /// The entries of a message; nil when it is malformed (short, an unknown
    /// version or TCP state), so nothing of it is installed.
    public static func decode(_ payload: UnsafeRawBufferPointer) -> [ConnectionEntry]? {
        guard payload.count >= 4, payload[0] == version || payload[0] == 1 else { return nil }
        let length = payload[0] == version ? entryLength : version1EntryLength
        let count = Int(payload[1])
        guard count <= maximumEntries, payload.count >= 4 + count * length else { return nil }
        func read32(_ offset: Int) -> UInt32 {
            UInt32(payload[offset]) << 24 | UInt32(payload[offset + 1]) << 16 | UInt32(payload[offset + 2]) << 8 | UInt32(payload[offset + 3])
        }
        func read16(_ offset: Int) -> UInt16 { UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1]) }
        var entries: [ConnectionEntry] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            let base = 4 + index * length
            guard let state = TCPConnectionState(rawValue: payload[base + 17]) else { return nil }
            let key = ConnectionKey(
                zone: read32(base), source: IPv4.Address(read32(base + 4)), destination: IPv4.Address(read32(base + 8)),
                sourcePort: read16(base + 12), destinationPort: read16(base + 14), ipProtocol: payload[base + 16])
            var replyKey = key.reversed
            if length == entryLength {
                replyKey = ConnectionKey(
                    zone: key.zone, source: IPv4.Address(read32(base + 24)), destination: IPv4.Address(read32(base + 28)),
                    sourcePort: read16(base + 32), destinationPort: read16(base + 34), ipProtocol: key.ipProtocol)
            }
            let flags = payload[base + 18]
            entries.append(ConnectionEntry(
                key: key, replyKey: replyKey, tcpState: state, replied: flags & 1 != 0, finFrom: flags >> 1 & 0x3, owner: read32(base + 20)))
        }
        return entries
    }
}
