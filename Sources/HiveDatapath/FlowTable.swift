import HivePacket

/// The datapath's flow cache: a flow key to the actions its simulation
/// decided, with the tags of what that simulation read.
///
/// A flow matches either exactly (`FlowMask.exact`: every key field) or
/// only the fields its simulation read (a megaflow: one flow for every
/// connection between two VMs that the simulation did not tell apart).
/// A lookup tries the exact index first, then one masked lookup per mask
/// in use (Open vSwitch's tuple space search; masks are few: one per kind
/// of path).
///
/// Owned by one datapath thread; not thread-safe, and needs not be.
/// Invariants: for a live exact slot `index[entries[slot].key] == slot`;
/// for a live megaflow slot `megaflows[(entries[slot].key, mask)] == slot`
/// with its key stored masked and its mask in `masks`; free slots are on
/// `freeSlots`. Entries never move, so a lookup result stays valid until
/// the next install, removal or expiry.
public struct FlowTable: Sendable {
    public struct Entry: Sendable {
        /// The key, with the fields outside `mask` zero.
        public var key: FlowKey
        /// The fields the flow matches; `.exact` for an exact-match flow.
        public var mask: FlowMask
        public var actions: FlowActions
        public var tags: [FlowTag]
        /// The table's clock when a packet last used the flow.
        public var lastUsed: UInt64
        /// The table's clock when the flow was installed.
        public var installed: UInt64
        /// Its own hard timeout when shorter than the table's; 0: none.
        public var maximumAge: UInt64
        public var packets: UInt64
        public var bytes: UInt64
        /// The connections each hit checks and moves on; nil: none.
        public var tracking: FlowTracking?
        var live: Bool
    }

    public private(set) var entries: [Entry] = []
    /// Exact-match flows by key.
    private var index: [FlowKey: Int32] = [:]
    /// Megaflows by masked key and mask.
    private var megaflows: [MaskedKey: Int32] = [:]
    /// The masks of the megaflows, each once, and how many flows use each.
    private var masks: [FlowMask] = []
    private var maskUse: [FlowMask: Int] = [:]

    struct MaskedKey: Hashable {
        var key: FlowKey
        var mask: FlowMask
    }
    private var freeSlots: [Int32] = []
    /// Tag -> slots of flows installed with it: invalidation visits only
    /// those. Kept lazily: a removed flow's slot stays until its tag is
    /// invalidated or its list compacted, and a slot reused by another flow
    /// is checked against that flow's tags.
    private var slotsByTag: [FlowTag: TaggedSlots] = [:]
    /// Where the next eviction sample starts.
    private var evictionCursor = 0

    struct TaggedSlots {
        var slots: [Int32] = []
        /// Compact when the list reaches this length.
        var limit = 64
    }
    /// The most flows held; installs beyond it first expire, then evict.
    public let capacity: Int

    public init(capacity: Int = 65_536) {
        precondition(capacity > 0, "a flow table holds at least one flow")
        self.capacity = capacity
        index.reserveCapacity(min(capacity, 4096))
    }

    public var count: Int { index.count + megaflows.count }

    /// How many megaflows there are, and how many masks they use.
    public var megaflowCount: Int { megaflows.count }
    public var maskCount: Int { masks.count }

    /// The slot of the flow for `key`, if cached.
    /// - Complexity: O(masks in use + 1) hashes of the key; no allocation.
    @inlinable
    public func lookup(_ key: FlowKey) -> Int32? { lookupSlot(key) }

    @usableFromInline
    func lookupSlot(_ key: FlowKey) -> Int32? {
        if let slot = index[key] { return slot }
        for mask in masks {
            if let slot = megaflows[MaskedKey(key: key.masked(by: mask), mask: mask)] { return slot }
        }
        return nil
    }

    /// Records a packet of `bytes` on the flow in `slot` at time `now`.
    public mutating func touch(_ slot: Int32, bytes: Int, now: UInt64) {
        let position = Int(slot)
        entries[position].lastUsed = now
        entries[position].packets &+= 1  // wraps after 2^64 packets: a counter, not a check
        entries[position].bytes &+= UInt64(bytes)
    }

    /// Whether the flow in `slot` checks connections on each hit.
    @inlinable
    public func isTracked(_ slot: Int32) -> Bool { entries[Int(slot)].tracking != nil }

    /// The connections the flow in `slot` checks on each hit, if any.
    @inlinable
    public func tracking(_ slot: Int32) -> FlowTracking? { entries[Int(slot)].tracking }

    /// The actions of the flow in `slot`.
    @inlinable
    public func actions(_ slot: Int32) -> FlowActions { entries[Int(slot)].actions }

    /// Caches `actions` for the packets that agree with `key` on `mask`
    /// (the in-port is always matched), replacing any flow for the same.
    /// When full, the least recently used of a sample makes room.
    /// - Complexity: O(1) amortized.
    @discardableResult
    public mutating func install(
        _ key: FlowKey, mask: FlowMask = .exact, actions: FlowActions, tags: [FlowTag], now: UInt64, maximumAge: UInt64 = 0,
        tracking: FlowTracking? = nil
    ) -> Int32 {
        let mask = mask.union(.inPort)
        let exact = mask == .exact
        let stored = exact ? key : key.masked(by: mask)
        if let slot = exact ? index[stored] : megaflows[MaskedKey(key: stored, mask: mask)] { remove(slot: slot) }
        if count >= capacity { evictLeastRecentlyUsed() }
        let entry = Entry(
            key: stored, mask: mask, actions: actions, tags: tags, lastUsed: now, installed: now, maximumAge: maximumAge,
            packets: 0, bytes: 0, tracking: tracking, live: true)
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            entries[Int(slot)] = entry
        } else {
            slot = Int32(entries.count)
            entries.append(entry)
        }
        if exact {
            index[stored] = slot
        } else {
            megaflows[MaskedKey(key: stored, mask: mask)] = slot
            if maskUse[mask, default: 0] == 0 { masks.append(mask) }
            maskUse[mask, default: 0] += 1
        }
        for tag in tags { remember(slot, under: tag) }
        return slot
    }

    private mutating func remember(_ slot: Int32, under tag: FlowTag) {
        slotsByTag[tag, default: TaggedSlots()].slots.append(slot)
        guard let list = slotsByTag[tag], list.slots.count >= list.limit else { return }
        // Keep the live flows that still carry the tag; amortized O(1) per install.
        var kept: [Int32] = []
        var seen = Set<Int32>()
        for candidate in list.slots where entries[Int(candidate)].live && entries[Int(candidate)].tags.contains(tag) {
            if seen.insert(candidate).inserted { kept.append(candidate) }
        }
        slotsByTag[tag] = TaggedSlots(slots: kept, limit: max(64, kept.count * 2))
    }

    /// Removes every flow carrying one of `tags`; returns how many.
    /// - Complexity: O(flows installed with these tags since their last
    ///   invalidation), not O(flows).
    @discardableResult
    public mutating func invalidate(_ tags: Set<FlowTag>) -> Int {
        guard !tags.isEmpty else { return 0 }
        var removed = 0
        for tag in tags {
            guard let list = slotsByTag.removeValue(forKey: tag) else { continue }
            for slot in list.slots where entries[Int(slot)].live && entries[Int(slot)].tags.contains(tag) {
                remove(slot: slot)
                removed += 1
            }
        }
        return removed
    }

    /// Removes every flow whose actions output to local port `portKey` or
    /// that came in by it; returns how many.
    @discardableResult
    public mutating func removeFlows(touchingPort portKey: UInt32) -> Int {
        var removed = 0
        for slot in entries.indices where entries[slot].live {
            let entry = entries[slot]
            if entry.key.inPort == portKey || entry.actions.outputs.contains(.local(portKey: portKey)) {
                remove(slot: Int32(slot))
                removed += 1
            }
        }
        return removed
    }

    /// Removes flows idle since before `now - idle`, and flows installed
    /// before `now - maximumAge` however busy (so a long-lived flow is
    /// simulated again now and then, refreshing what it learned); returns
    /// how many.
    @discardableResult
    public mutating func expire(idleLongerThan idle: UInt64, olderThan maximumAge: UInt64 = .max, now: UInt64) -> Int {
        var removed = 0
        for slot in entries.indices where entries[slot].live
            && (now &- entries[slot].lastUsed > idle || now &- entries[slot].installed > maximumAge
                || (entries[slot].maximumAge != 0 && now &- entries[slot].installed > entries[slot].maximumAge)) {
            remove(slot: Int32(slot))
            removed += 1
        }
        return removed
    }

    public mutating func removeAll() {
        entries.removeAll()
        index.removeAll()
        megaflows.removeAll()
        masks.removeAll()
        maskUse.removeAll()
        freeSlots.removeAll()
        slotsByTag.removeAll()
        evictionCursor = 0
    }

    private mutating func remove(slot: Int32) {
        let position = Int(slot)
        guard entries[position].live else { return }
        let mask = entries[position].mask
        if mask == .exact {
            index[entries[position].key] = nil
        } else {
            megaflows[MaskedKey(key: entries[position].key, mask: mask)] = nil
            let left = maskUse[mask, default: 1] - 1
            maskUse[mask] = left == 0 ? nil : left
            if left == 0 { masks.removeAll { $0 == mask } }
        }
        entries[position].live = false
        entries[position].actions = .drop
        entries[position].tags = []
        entries[position].tracking = nil
        freeSlots.append(slot)
    }

    /// Removes the least recently used of a sample of 16 live flows (all of
    /// them in a small table), so a full table costs O(1) per install, not
    /// a scan (the approximation Redis uses for its LRU).
    @inline(never)
    private mutating func evictLeastRecentlyUsed() {
        var oldest: Int32?
        var oldestTime = UInt64.max
        var sampled = 0
        var visited = 0
        while sampled < 16, visited < entries.count {
            let slot = evictionCursor % entries.count
            evictionCursor = slot + 1
            visited += 1
            guard entries[slot].live else { continue }
            sampled += 1
            if entries[slot].lastUsed < oldestTime {
                oldest = Int32(slot)
                oldestTime = entries[slot].lastUsed
            }
        }
        if let oldest { remove(slot: oldest) }
    }
}
