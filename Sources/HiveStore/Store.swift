// The NSDB seen by the rest of Hive: a key-value store with etcd v3 semantics.
//
// Every change gets the next store-wide revision. Reads return the revision
// they saw; a watch resumes from any revision the store still keeps, so a
// reader that reconnects misses nothing. Multi-key changes are transactions:
// the compares are checked and the chosen branch applied atomically, as one
// revision. Keys attached to a lease vanish when the lease lapses.
//
// Two conformances: `EmbeddedStore` (in-process, durable on local disk) and
// `EtcdStore` (a real etcd v3 cluster over its JSON gateway). Both pass the
// same conformance suite in Tests/HiveStoreTests.

/// A store-wide, strictly increasing change number (etcd's revision).
import Synchronization
public typealias Revision = Int64

/// An etcd lease identifier. Zero means "no lease".
public typealias LeaseID = Int64

/// A stored key with its value and revisions.
public struct KeyValue: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]
    /// Revision of the change that created the key (since its last deletion).
    public var createRevision: Revision
    /// Revision of the last change to the key.
    public var modRevision: Revision
    /// Number of changes since creation; 1 after the first put.
    public var version: Int64
    /// The lease the key is attached to, 0 for none.
    public var lease: LeaseID

    public init(key: String, value: [UInt8], createRevision: Revision, modRevision: Revision, version: Int64, lease: LeaseID = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// Which keys a read, delete or compare covers.
public enum KeyRange: Hashable, Sendable {
    case key(String)
    /// Every key that starts with the prefix.
    case prefix(String)

    /// The etcd `[key, rangeEnd)` pair; nil rangeEnd for a single key.
    public var bounds: (key: [UInt8], rangeEnd: [UInt8]?) {
        switch self {
        case .key(let key):
            return (Array(key.utf8), nil)
        case .prefix(let prefix):
            return (Array(prefix.utf8), Self.prefixEnd(Array(prefix.utf8)))
        }
    }

    public func contains(_ key: String) -> Bool {
        switch self {
        case .key(let only): return key == only
        case .prefix(let prefix): return key.utf8.starts(with: prefix.utf8)
        }
    }

    /// The smallest key greater than every key with this prefix; [0] (all keys) for an empty prefix.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}

/// A read of one key or a range.
public struct RangeResult: Sendable {
    /// Matching keys in key order.
    public var keyValues: [KeyValue]
    /// The store revision the read saw.
    public var revision: Revision
    public init(keyValues: [KeyValue], revision: Revision) {
        self.keyValues = keyValues
        self.revision = revision
    }
}

/// A condition of a transaction. With a prefix range every key in the range
/// must satisfy it; an empty range compares as a key with zero revisions,
/// version and lease (and a value compare fails), as in etcd.
public struct Compare: Hashable, Sendable {
    public enum Target: Hashable, Sendable {
        case version(Int64)
        case createRevision(Revision)
        case modRevision(Revision)
        case value([UInt8])
        case lease(LeaseID)
    }

    public enum Result: String, Hashable, Sendable {
        case equal, notEqual, greater, less
    }

    public var range: KeyRange
    public var target: Target
    public var result: Result

    public init(_ range: KeyRange, _ target: Target, _ result: Result) {
        self.range = range
        self.target = target
        self.result = result
    }

    /// The key does not exist.
    public static func absent(_ key: String) -> Compare { Compare(.key(key), .version(0), .equal) }
    /// The key exists.
    public static func present(_ key: String) -> Compare { Compare(.key(key), .version(0), .greater) }
    /// The key was last changed at `revision` (optimistic concurrency).
    public static func unchanged(_ key: String, since revision: Revision) -> Compare {
        Compare(.key(key), .modRevision(revision), .equal)
    }
}

/// One operation of a transaction branch.
public enum Operation: Hashable, Sendable {
    case put(key: String, value: [UInt8], lease: LeaseID = 0)
    case delete(KeyRange)
    case get(KeyRange)
}

/// What one operation of the applied branch returned.
public enum OperationResponse: Hashable, Sendable {
    case put(previous: KeyValue?)
    case delete(deleted: Int64)
    case get([KeyValue])
}

public struct Transaction: Sendable {
    public var compares: [Compare]
    public var success: [Operation]
    public var failure: [Operation]

    public init(compares: [Compare] = [], success: [Operation] = [], failure: [Operation] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }
}

public struct TransactionResult: Sendable {
    /// True when every compare held and `success` was applied.
    public var succeeded: Bool
    /// The store revision after the transaction (unchanged if it wrote nothing).
    public var revision: Revision
    /// One response per operation of the applied branch.
    public var responses: [OperationResponse]

    public init(succeeded: Bool, revision: Revision, responses: [OperationResponse]) {
        self.succeeded = succeeded
        self.revision = revision
        self.responses = responses
    }
}

public struct WatchEvent: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable { case put, delete }
    public var kind: Kind
    /// For a delete: the key, with `modRevision` the deletion's revision and an empty value.
    public var keyValue: KeyValue

    public init(kind: Kind, keyValue: KeyValue) {
        self.kind = kind
        self.keyValue = keyValue
    }
}

/// The events of one or more consecutive revisions, in revision order. A
/// revision's events are never split across two batches.
public struct WatchBatch: Sendable {
    public var events: [WatchEvent]
    /// Every change in the watched range up to this revision has been
    /// delivered (this batch included), so a watch resumed from
    /// `revision + 1` misses nothing. A batch with no events is a progress
    /// notice (the watch is current up to here).
    public var revision: Revision

    public init(events: [WatchEvent], revision: Revision) {
        self.events = events
        self.revision = revision
    }
}

public struct Lease: Hashable, Sendable {
    public var id: LeaseID
    /// Seconds the lease lives without a keep-alive.
    public var ttl: Int64
    public init(id: LeaseID, ttl: Int64) {
        self.id = id
        self.ttl = ttl
    }
}

public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The watch asked for a revision the store no longer keeps; re-read and
    /// watch from the read's revision + 1.
    case compacted(requested: Revision, compactRevision: Revision)
    /// The requested revision is newer than the store's.
    case futureRevision(requested: Revision, current: Revision)
    case leaseNotFound(LeaseID)
    /// No store member answered; `detail` says what was tried.
    case unavailable(String)
    /// The request reached a member but its outcome is unknown (the
    /// connection failed before the answer). The write may or may not apply.
    case outcomeUnknown(String)
    /// The store refused the request; `detail` is its message.
    case rejected(String)
    case closed

    public var description: String {
        switch self {
        case .compacted(let requested, let compactRevision):
            return "revision \(requested) is compacted (oldest kept: \(compactRevision + 1))"
        case .futureRevision(let requested, let current):
            return "revision \(requested) is in the future (current: \(current))"
        case .leaseNotFound(let id): return "lease \(id) not found"
        case .unavailable(let detail): return "store unavailable: \(detail)"
        case .outcomeUnknown(let detail): return "store write outcome unknown: \(detail)"
        case .rejected(let detail): return "store rejected the request: \(detail)"
        case .closed: return "store is closed"
        }
    }
}

/// An ordered stream of watch batches. It ends by throwing (a compaction, a
/// closed store) or when the consumer stops iterating.
public typealias WatchStream = AsyncThrowingStream<WatchBatch, any Error>

public protocol Store: Sendable {
    /// Reads one key or a range, at the current revision.
    func range(_ range: KeyRange) async throws -> RangeResult

    /// Puts a value; returns the revision of the change.
    @discardableResult
    func put(_ key: String, value: [UInt8], lease: LeaseID) async throws -> Revision

    /// Deletes a key or a range; returns the number deleted and the store revision.
    @discardableResult
    func delete(_ range: KeyRange) async throws -> (deleted: Int64, revision: Revision)

    /// Checks the compares and applies one branch, atomically.
    func transaction(_ transaction: Transaction) async throws -> TransactionResult

    /// The most compares, or operations of one branch, a transaction may
    /// hold (etcd's `--max-txn-ops`, 128 by default). A larger one is
    /// refused with `StoreError.rejected`.
    var maxOperationsPerTransaction: Int { get }

    /// Watches a key or range. With `fromRevision`, every change from that
    /// revision on is delivered first (or the stream throws
    /// `StoreError.compacted`); without it, every change made after this call
    /// returns. A batch with no events is a progress notice.
    func watch(_ range: KeyRange, fromRevision: Revision?) async -> WatchStream

    /// Watches several ranges, each from its own revision, as one stream,
    /// to which ranges can be added while it runs (`MultiWatch.add`). Within
    /// a range, changes come in revision order, each once; across ranges no
    /// order is promised, so a batch's `revision` is a point to resume from
    /// only for its own range.
    func watch(_ ranges: [WatchedRange]) async -> MultiWatch

    func grantLease(ttl: Int64) async throws -> Lease
    /// Refreshes a lease; returns its TTL. Throws `leaseNotFound` if it lapsed.
    @discardableResult
    func keepAlive(_ lease: LeaseID) async throws -> Int64
    /// Ends a lease now; its keys are deleted.
    func revokeLease(_ lease: LeaseID) async throws

    /// Releases connections and files; pending watches end.
    func close() async
}

/// A range and the revision to watch it from.
public struct WatchedRange: Hashable, Sendable {
    public var range: KeyRange
    public var from: Revision

    public init(_ range: KeyRange, from: Revision) {
        self.range = range
        self.from = from
    }
}

/// A watch over several ranges that may grow.
public struct MultiWatch: Sendable {
    public let events: WatchStream
    private let extend: @Sendable ([WatchedRange]) -> Void

    public init(events: WatchStream, extend: @escaping @Sendable ([WatchedRange]) -> Void) {
        self.events = events
        self.extend = extend
    }

    /// Watches these ranges too, each from its revision on.
    public func add(_ ranges: [WatchedRange]) { if !ranges.isEmpty { extend(ranges) } }
}

extension Store {
    /// One watch per range, merged: right where a watch costs little (in-process).
    public func watch(_ ranges: [WatchedRange]) async -> MultiWatch {
        let (stream, continuation) = WatchStream.makeStream()
        let tasks = Mutex<[Task<Void, Never>]?>([])
        continuation.onTermination = { _ in
            for task in tasks.withLock({ tasks in defer { tasks = nil }; return tasks ?? [] }) { task.cancel() }
        }
        let extend: @Sendable ([WatchedRange]) -> Void = { ranges in
            for watched in ranges {
                let task = Task {
                    do {
                        for try await batch in await self.watch(watched.range, fromRevision: watched.from) {
                            if case .terminated = continuation.yield(batch) { return }
                        }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                let kept = tasks.withLock { tasks in
                    guard tasks != nil else { return false }
                    tasks!.append(task)
                    return true
                }
                if !kept { task.cancel() }
            }
        }
        extend(ranges)
        return MultiWatch(events: stream, extend: extend)
    }

    /// No limit, unless the backend says otherwise.
    public var maxOperationsPerTransaction: Int { Int.max }

    /// One key, or nil.
    public func get(_ key: String) async throws -> KeyValue? {
        try await range(.key(key)).keyValues.first
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8]) async throws -> Revision {
        try await put(key, value: value, lease: 0)
    }

    @discardableResult
    public func put(_ key: String, _ value: String, lease: LeaseID = 0) async throws -> Revision {
        try await put(key, value: Array(value.utf8), lease: lease)
    }
}

extension KeyValue {
    /// The value as UTF-8 text.
    public var text: String { String(decoding: value, as: UTF8.self) }
}
