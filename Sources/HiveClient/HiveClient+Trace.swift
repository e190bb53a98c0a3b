import Foundation
import HiveModel

/// A live trace request as the API shows it.
public struct LiveTraceInfo: Codable, Hashable, Sendable {
    public var id: LiveTraceID
    public var portId: PortID
    public var match: String
    public var count: Int
    public var tenantId: String?
    /// Seconds the request lives without a read of its results.
    public var leaseTTL: Int
}

/// Traced packets newer than a read's `after`.
public struct LiveTracePage: Codable, Sendable {
    public struct Result: Codable, Sendable {
        public var revision: Int
        public var report: TraceReport
    }
    public var results: [Result]
    public var revision: Int

    /// `after` for the next read.
    public var next: Int { results.map(\.revision).max() ?? revision }
}

extension HiveClient {
    /// Simulates a described packet on the network's live state (POST /v1/traces).
    public func trace(_ spec: TraceSpec) async throws(HiveClientError) -> TraceReport {
        try Self.decode(TraceReport.self, from: await send(.post, ["traces"], body: Self.body(spec)))
    }

    /// Arms a live trace of packets entering by `port` (POST /v1/trace-requests).
    public func armTrace(port: PortID, match: String, count: Int) async throws(HiveClientError) -> LiveTraceInfo {
        struct Body: Encodable {
            var portId: PortID
            var match: String
            var count: Int
        }
        return try Self.decode(LiveTraceInfo.self, from: await send(
            .post, ["trace-requests"], body: Self.body(Body(portId: port, match: match, count: count))))
    }

    /// The packets traced after revision `after`, waiting up to `wait` seconds for one; keeps the request alive.
    public func traceResults(_ id: LiveTraceID, after: Int, wait: Int) async throws(HiveClientError) -> LiveTracePage {
        try Self.decode(LiveTracePage.self, from: await send(
            .get, ["trace-requests", id.description, "results"],
            query: [URLQueryItem(name: "after", value: String(after)), URLQueryItem(name: "wait", value: String(wait))]))
    }

    /// Ends a live trace and drops what it traced.
    public func disarmTrace(_ id: LiveTraceID) async throws(HiveClientError) {
        _ = try await send(.delete, ["trace-requests", id.description])
    }

    static func decode<T: Decodable>(_ type: T.Type, from answer: Answer) throws(HiveClientError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: answer.body)
        } catch {
            throw .unexpectedResponse(status: answer.status, detail: "cannot read the answer as \(T.self): \(error)")
        }
    }
}
