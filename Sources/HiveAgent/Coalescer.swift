import Synchronization

/// Hands its consumer everything produced since the consumer's last turn,
/// at once: a burst of watch batches that arrives while the agent applies
/// one becomes a single application (one rebuild of the view), however
/// long the burst, and nothing waits on the consumer to be received.
final class Coalescer<Element: Sendable>: Sendable {
    private let pending = Mutex<[Element]>([])
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    init() {
        // One ring is enough to wake the consumer; more while it works are the same ring.
        (doorbell, ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ element: Element) {
        pending.withLock { $0.append(element) }
        ring.yield()
    }

    /// No more elements: `drain` returns once it has handed over the last.
    func finish() { ring.finish() }

    /// Calls `consume` with everything pushed since its previous call, in
    /// order, until `finish()`; what is left then is handed over too.
    func drain(_ consume: ([Element]) async -> Void) async {
        for await _ in doorbell {
            let taken = take()
            if !taken.isEmpty { await consume(taken) }
        }
        let rest = take()
        if !rest.isEmpty { await consume(rest) }
    }

    private func take() -> [Element] {
        pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }
}
