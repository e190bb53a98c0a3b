import Foundation
import Testing
@testable import HiveAgent

/// Watch batches that arrive while the agent applies one are applied
/// together: a burst costs one application (one rebuild), not one each.
@Suite struct CoalescerTests {
    final class Calls: @unchecked Sendable {
        private let lock = NSLock()
        private var taken: [[Int]] = []
        func record(_ items: [Int]) -> Int { lock.withLock { taken.append(items); return taken.count } }
        var all: [[Int]] { lock.withLock { taken } }
    }

    @Test func aBurstPushedWhileTheConsumerWorksIsHandedOverAtOnce() async {
        let coalescer = Coalescer<Int>()
        let calls = Calls()
        let (busy, nowBusy) = AsyncStream<Void>.makeStream()
        let (release, releaseIt) = AsyncStream<Void>.makeStream()
        let consumer = Task {
            await coalescer.drain { items in
                // The first application takes its time: everything pushed meanwhile waits.
                if calls.record(items) == 1 {
                    nowBusy.yield()
                    for await _ in release { break }
                }
            }
        }
        coalescer.push(0)
        for await _ in busy { break }
        for item in 1...1000 { coalescer.push(item) }
        releaseIt.yield()
        coalescer.finish()
        await consumer.value
        #expect(calls.all == [[0], Array(1...1000)], "the burst in one call, in order")
    }

    @Test func whatIsLeftAtTheEndIsHandedOverAndNothingIsLost() async {
        let coalescer = Coalescer<Int>()
        let calls = Calls()
        for item in 0..<5 { coalescer.push(item) }
        coalescer.finish()
        await coalescer.drain { _ = calls.record($0) }
        #expect(calls.all.flatMap { $0 } == Array(0..<5))
    }
}
