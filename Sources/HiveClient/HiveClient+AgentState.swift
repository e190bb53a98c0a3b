import Foundation
import HiveModel

/// An agent's state as the API passed it on: the decoded value, and the JSON
/// exactly as the API sent it (for `--json`).
public struct Reported<Value: Decodable & Sendable>: Sendable {
    public var value: Value
    public var json: Data

    init(_ answer: HiveClient.Answer) throws(HiveClientError) {
        do {
            value = try JSONDecoder().decode(Value.self, from: answer.body)
        } catch {
            throw .unexpectedResponse(status: answer.status, detail: "the API returned a \(Value.self) this client cannot read: \(describeDecodingError(error))")
        }
        json = answer.body
    }
}

// MARK: The agents' state (asked of the host's agent by the API)

extension HiveClient {
    /// A host's installed flows; with `port`, those entering or leaving by it;
    /// the busiest `limit` (the API's default: 1000) (GET /v1/hosts/{id}/flows?port=&limit=). Admin only.
    public func flows(host: HostID, port: PortID? = nil, limit: Int? = nil) async throws(HiveClientError) -> Reported<AgentFlows> {
        var query = port.map { [URLQueryItem(name: "port", value: $0.description)] } ?? []
        if let limit { query.append(URLQueryItem(name: "limit", value: String(limit))) }
        return try Reported(await send(.get, ["hosts", host.description, "flows"], query: query))
    }

    /// A host's flow counts, hit rate, upcall rate and drops (GET /v1/hosts/{id}/flows/summary). Admin only.
    public func flowSummary(host: HostID) async throws(HiveClientError) -> Reported<AgentFlowSummary> {
        try Reported(await send(.get, ["hosts", host.description, "flows", "summary"]))
    }

    /// Where a port lives now and its counters (GET /v1/ports/{id}/status).
    public func portStatus(_ port: PortID) async throws(HiveClientError) -> Reported<PortStatus> {
        try Reported(await send(.get, ["ports", port.description, "status"]))
    }
}
