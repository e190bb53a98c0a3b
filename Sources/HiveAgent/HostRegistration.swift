import Foundation
import HiveModel
import HivePacket
import HiveStore
import Logging

/// Makes sure the NSDB knows this host: a stable id (kept on disk across
/// restarts), its name and underlay address, and its tunnel zone membership.
struct HostRegistration {
    let store: any Store
    let configuration: AgentConfiguration
    let logger: Logger

    func register() async throws -> HostID {
        let repository = TopologyRepository(store: store)
        let id = try configuration.hostID ?? persistentID()
        let address = configuration.underlayAddress
        let endpoint = configuration.agentEndpoint
        if var stored = try await repository.find(id)?.object {
            if stored.underlayAddresses.first != address || stored.name != configuration.hostName
                || (endpoint != nil && stored.agentEndpoint != endpoint) {
                stored.name = configuration.hostName
                stored.underlayAddresses = [address] + stored.underlayAddresses.filter { $0 != address }
                if let endpoint { stored.agentEndpoint = endpoint }
                _ = try await repository.update(stored)
            }
        } else {
            do {
                _ = try await repository.create(Host(id: id, name: configuration.hostName, underlayAddresses: [address], agentEndpoint: endpoint))
            } catch RepositoryError.duplicate(_, _, let existing) {
                throw AgentError("another host (\(existing)) is already registered as '\(configuration.hostName)'; give this agent another --name, or its --host-id")
            }
        }
        if let zoneName = configuration.tunnelZone {
            try await join(zoneName, host: id, address: address, repository: repository)
        }
        return id
    }

    /// Adds the host to the zone (creating the zone), retrying on races with other agents.
    private func join(_ name: String, host: HostID, address: IPv4.Address, repository: TopologyRepository) async throws {
        for _ in 0..<32 {
            let zones = try await repository.list(TunnelZone.self).items
            guard let stored = zones.first(where: { $0.object.name == name }) else {
                do {
                    _ = try await repository.create(TunnelZone(name: name, members: [TunnelZoneMember(hostId: host, address: address)]))
                    return
                } catch RepositoryError.duplicate {
                    continue
                }
            }
            var zone = stored.object
            if zone.members.contains(TunnelZoneMember(hostId: host, address: address)) { return }
            zone.members.removeAll { $0.hostId == host }
            zone.members.append(TunnelZoneMember(hostId: host, address: address))
            do {
                _ = try await repository.update(zone, expectedRevision: stored.revision)
                return
            } catch RepositoryError.staleRevision {
                continue
            }
        }
        throw AgentError("could not join tunnel zone '\(name)': too many concurrent changes")
    }

    /// The id kept in `directory`, if one was written there and reads back.
    static func storedID(in directory: String) -> HostID? {
        guard let text = try? String(contentsOfFile: directory + "/host-id", encoding: .utf8) else { return nil }
        return HostID(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The id in `stateDirectory/host-id`, written there the first time.
    private func persistentID() throws -> HostID {
        let directory = configuration.stateDirectory ?? (NSHomeDirectory() + "/.hive/agent")
        let path = directory + "/host-id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            guard let id = HostID(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw AgentError("\(path) does not hold a host id (a UUID); remove it to get a new one")
            }
            return id
        }
        let id = HostID()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try (id.description + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        logger.info("new host id \(id) kept in \(path)")
        return id
    }
}
