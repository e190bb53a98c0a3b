import Testing
@testable import HiveStore

/// A consumer of an etcd watch resumes (after its own watch ends) from the
/// revision after the last batch it applied. That must never skip an
/// event: no batch may claim a revision whose events have not been
/// delivered, whether it is a progress notice running ahead of unsynced
/// events (etcd 3.4 sends those) or a catch-up batch whose header carries
/// the store's current revision while more events are still to come.
@Suite("etcd watch resume point")
struct EtcdWatchResumeTests {
    func message(_ json: String) throws -> EtcdJSON.StreamMessage<EtcdJSON.WatchResponse> {
        try EtcdJSON.decode(EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>.self, from: Array(json.utf8), what: "test")
    }

    func put(_ revision: Int) -> String {
        #"{"kv":{"key":"YQ==","create_revision":"2","mod_revision":"\#(revision)","version":"1","value":"eA=="}}"#
    }

    /// Feeds messages to a cursor as `follow` does; returns the revisions of
    /// the events delivered and where a consumer applying every batch would
    /// resume.
    func consume(_ messages: [String], cursor: inout WatchCursor, applied: inout Revision) throws -> [Revision] {
        var delivered: [Revision] = []
        for json in messages {
            if case .deliver(let batch) = cursor.receive(try message(json)) {
                delivered += batch.events.map(\.keyValue.modRevision)
                applied = max(applied, batch.revision)
            }
        }
        return delivered
    }

    @Test func aProgressNoticeAheadOfUnsyncedEventsMovesNeitherTheWatchNorItsConsumerPastThem() throws {
        var cursor = WatchCursor(next: 2)
        var applied: Revision = 1
        // Events of 2..5, then a notice at 9 that runs ahead of 6..9.
        var delivered = try consume([
            #"{"result":{"header":{"revision":"5"},"created":true}}"#,
            #"{"result":{"header":{"revision":"5"},"events":[\#(put(2)),\#(put(5))]}}"#,
            #"{"result":{"header":{"revision":"9"}}}"#,
        ], cursor: &cursor, applied: &applied)
        #expect(cursor.next == 6, "the watch re-created after a break starts after the last event, not the notice")
        #expect(applied == 5, "a consumer that resumes from what it applied must not pass undelivered events")

        // The stream breaks; the watch is re-created from `cursor.next` and gets 6..9.
        delivered += try consume([
            #"{"result":{"header":{"revision":"9"},"created":true}}"#,
            #"{"result":{"header":{"revision":"9"},"events":[\#(put(6)),\#(put(9))]}}"#,
        ], cursor: &cursor, applied: &applied)
        #expect(delivered == [2, 5, 6, 9])
        #expect(cursor.next == 10)
        #expect(applied == 9)

        // Once the events are delivered, a notice says as much as it can.
        _ = try consume([#"{"result":{"header":{"revision":"12"}}}"#], cursor: &cursor, applied: &applied)
        #expect(applied == 9)
    }

    @Test func aCatchUpBatchClaimsOnlyTheRevisionsItCarries() throws {
        var cursor = WatchCursor(next: 2)
        var applied: Revision = 1
        // etcd splits a long catch-up into several messages, each with the
        // store's current revision (20) in its header.
        let delivered = try consume([
            #"{"result":{"header":{"revision":"20"},"events":[\#(put(2)),\#(put(7))]}}"#,
        ], cursor: &cursor, applied: &applied)
        #expect(delivered == [2, 7])
        #expect(applied == 7, "revisions 8..20 may still have events on their way")
        #expect(cursor.next == 8)
    }
}
