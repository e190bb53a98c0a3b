import Foundation
import HiveStore
import Logging

// The line a whole-system benchmark reads to know when a change reached an
// agent (`scripts/bench-scale.sh`): one per turn of the NSDB watch, after the
// change is applied and the new view published to the datapath. It carries
// the highest store revision applied and the wall-clock time in
// microseconds (the log's own timestamp has whole seconds only), so the
// delay from a write, whose revision the API returns, is read from the logs
// of hundreds of agents without asking any of them. Debug level: off in
// production, on with `hive agent --log-level debug`.

extension Agent {
    /// Logs the revision `batches` brought the view to, at debug level.
    /// - Complexity: O(batches); nothing at all above debug level.
    func logApplied(_ batches: [WatchBatch]) {
        guard logger.logLevel <= .debug, let revision = batches.map(\.revision).max() else { return }
        let events = batches.reduce(0) { $0 + $1.events.count }
        let wallClock = String(format: "%.6f", Date().timeIntervalSince1970)
        logger.debug("applied NSDB changes", metadata: [
            "revision": "\(revision)", "events": "\(events)", "wallClock": "\(wallClock)",
        ])
    }
}
