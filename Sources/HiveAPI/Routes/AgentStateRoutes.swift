import Foundation
import HiveModel
import HiveStore
import Hummingbird

import struct HiveModel.Host
import struct HiveModel.Port

extension HiveAPIServer {
    /// What the agents know and the NSDB does not: a host's installed flows
    /// and their summary (admin), and where a port lives now with its
    /// counters (whoever may read the port). Asked of the host's agent at
    /// its `agentEndpoint` on each request; nothing is stored.
    func addAgentStateRoutes(to v1: RouterGroup<APIRequestContext>) {
        let repository = repository
        let agents = agents
        /// The host's agent's answer at /state/<path>, or why it cannot be had.
        @Sendable func ask<Report: Decodable & Sendable>(
            _ type: Report.Type, _ host: Host, _ path: String, _ query: [String: String] = [:]
        ) async throws(AgentStateClient.Failure) -> Report {
            guard let endpoint = host.agentEndpoint else {
                throw AgentStateClient.Failure(description: "host \(host.name) records no agentEndpoint (its agent runs without --control-token-file)")
            }
            return try await agents.get(type, endpoint: endpoint, path: path, host: host.id, query: query)
        }
        /// `ask`, or 409 `agent_unavailable` saying why not.
        @Sendable func answer<Report: Decodable & Sendable>(
            _ type: Report.Type, _ host: Host, _ path: String, _ query: [String: String] = [:]
        ) async throws -> Report {
            do {
                return try await ask(type, host, path, query)
            } catch {
                throw APIError.agentUnavailable(host, error.description)
            }
        }

        v1.get("hosts/{id}/flows") { request, context in
            try context.requireAdmin(for: "hosts")
            let query = try request.query(allowing: ["port", "limit"])
            let host = try await repository.get(context.pathID(Host.self)).object
            var parameters: [String: String] = [:]
            if let limit = query.values["limit"] {
                guard let number = Int(limit), (1...AgentFlows.maximumLimit).contains(number) else {
                    throw APIError.malformed(
                        "query parameter limit: '\(printable(limit))' is not a number from 1 to \(AgentFlows.maximumLimit)", field: "limit", value: printable(limit))
                }
                parameters["limit"] = String(number)
            }
            if let port = try query.id("port") {
                guard try await repository.find(PortID(port)) != nil else {
                    throw APIError(.notFound, .notFound, "query parameter port: no port \(port.uuidString.lowercased())",
                                   field: "port", value: port.uuidString.lowercased())
                }
                parameters["port"] = port.uuidString.lowercased()
            }
            return JSONResponse.make(status: .ok, body: try await answer(AgentFlows.self, host, "flows", parameters))
        }
        v1.get("hosts/{id}/flows/summary") { request, context in
            try context.requireAdmin(for: "hosts")
            _ = try request.query(allowing: [])
            let host = try await repository.get(context.pathID(Host.self)).object
            return JSONResponse.make(status: .ok, body: try await answer(AgentFlowSummary.self, host, "summary"))
        }
        v1.get("ports/{id}/status") { request, context in
            let access = TopologyAccess(repository: repository, principal: try context.requirePrincipal())
            _ = try request.query(allowing: [])
            let port = try await access.get(context.pathID(Port.self)).object
            var status = PortStatus(portId: port.id, state: .unbound)
            status.mac = port.mac
            switch port.deviceKind {
            case .bridge: status.addresses = port.fixedIPs.map(\.description)
            case .router: status.addresses = port.address.map { ["\($0)/\(port.subnet?.length ?? 32)"] } ?? []
            }
            if let bridge = port.bridgeId {
                status.learnedMACs = try await repository.learnedMACs(on: port.id, bridge: bridge)
            }
            guard let binding = try await repository.binding(of: port.id)?.object else {
                status.reason = port.peerId != nil
                    ? "an interior port: it links two devices and lives on no host"
                    : "no binding: the port is on no host yet (hive binding create)"
                return JSONResponse.make(status: .ok, body: status)
            }
            let host = try await repository.find(binding.hostId)?.object
            let alive = try await repository.isAlive(binding.hostId)
            status.binding = .init(hostId: binding.hostId, hostName: host?.name, interface: binding.interfaceName, hostAlive: alive)
            status.state = .unknown
            guard let host else {
                status.reason = "agent unreachable: the binding's host \(binding.hostId) is gone"
                return JSONResponse.make(status: .ok, body: status)
            }
            // Asked even when the host's lease lapsed: liveness lags, and the agent's answer is the truth.
            do {
                let ports = try await ask(AgentPorts.self, host, "ports")
                if let entry = ports.ports.first(where: { $0.portId == port.id }) {
                    status.state = entry.up ? .up : .down
                    status.reason = entry.reason
                    status.counters = entry.counters
                } else {
                    status.reason = "the agent of host \(host.name) has not seen the binding yet"
                }
            } catch {
                status.reason = "agent unreachable: \(error)" + (alive ? "" : "; host \(host.name) is not alive (its agent holds no lease)")
            }
            return JSONResponse.make(status: .ok, body: status)
        }
    }
}

extension APIError {
    /// 409: the host's agent could not be asked, or refused. Not a 5xx: the
    /// API works; the host's agent is in no state to answer (down, unreachable,
    /// configured without a token), which a retry later or a fix there mends.
    static func agentUnavailable(_ host: Host, _ why: String) -> APIError {
        APIError(.conflict, .agentUnavailable, "the agent of host \(host.name) cannot be asked: \(why)")
    }
}
