import HiveModel
import HivePacket

// NAT in the repository: what the ports named by a router's gateway and by
// floating IPs must be, checked inside the change's own transaction.
//
// - A router's gateway port is one of that router's ports. A port never
//   moves to another device, so reading it is enough; its existence is the
//   reference compare's job.
// - A floating IP's port is a bridge port (a VM's) with a fixed IP, and its
//   `fixedAddress`, when given, is one of them. Fixed IPs can change, so the
//   floating IP's transaction requires the port as it was read; and a port
//   update that takes away the address a floating IP translates to is
//   refused, with a compare that no floating IP came to name the port
//   meanwhile.

extension TopologyRepository {
    func routerRules(_ router: Router) async throws {
        guard let gateway = router.gateway, let port = try await find(gateway.portId) else { return }
        guard port.object.deviceKind == .router, port.object.deviceId == router.id.uuid else {
            let owner = port.object.deviceKind == .router ? "router \(port.object.deviceId.uuidString.lowercased())" : "a bridge"
            throw RepositoryError.refused(
                field: "gateway.portId", value: gateway.portId.description,
                reason: "is a port of \(owner), not of router \(router.id) (expected one of the router's own ports: the one leading outside)")
        }
    }

    func floatingIPRules(_ floatingIP: FloatingIP, plan: inout ChangePlan) async throws {
        guard let portId = floatingIP.portId, let port = try await find(portId) else { return }
        guard port.object.deviceKind == .bridge else {
            throw RepositoryError.refused(
                field: "portId", value: portId.description,
                reason: "is a port of router \(port.object.deviceId.uuidString.lowercased()) (expected a VM's port: a bridge port with a fixed IP)")
        }
        let fixedIPs = port.object.fixedIPs
        guard !fixedIPs.isEmpty else {
            throw RepositoryError.refused(
                field: "portId", value: portId.description,
                reason: "has no fixed IP for the floating IP to translate to (expected a bridge port with at least one; give the port an address first)")
        }
        if let fixedAddress = floatingIP.fixedAddress, !fixedIPs.contains(fixedAddress) {
            throw RepositoryError.refused(
                field: "fixedAddress", value: fixedAddress.description,
                reason: "is not a fixed IP of port \(portId) (expected one of \(fixedIPs.map(\.description).joined(separator: ", ")), or omit it for the first)")
        }
        // The port's fixed IPs must still be these when the floating IP is written.
        plan.require(.unchanged(TopologyKeys.object(.port, portId), since: port.revision), .concurrent)
    }

    /// A bridge port keeps the fixed IP each of its floating IPs translates to.
    func portFloatingIPRules(_ port: Port, plan: inout ChangePlan) async throws {
        let prefix = TopologyKeys.referrers(of: port.id)
        let referrers = try await store.range(.prefix(prefix))
        // No floating IP may come to name the port before this commits.
        plan.require(Compare(.prefix(prefix), .modRevision(referrers.revision + 1), .less), .concurrent)
        for keyValue in referrers.keyValues {
            guard let referrer = IndexedReferrer(key: keyValue.key, value: keyValue.value, target: port.id.description),
                  referrer.kind == .floatingIP, let id = FloatingIPID(parsing: referrer.id),
                  let floatingIP = try await find(id)?.object else { continue }
            // Without a fixedAddress, the port's first fixed IP, whichever it is.
            let kept = floatingIP.fixedAddress.map(port.fixedIPs.contains) ?? !port.fixedIPs.isEmpty
            guard kept else {
                let address = floatingIP.fixedAddress.map { "its fixed IP \($0)" } ?? "a fixed IP"
                throw RepositoryError.refused(
                    field: "fixedIPs", value: port.fixedIPs.map(\.description).joined(separator: ","),
                    reason: "leaves out \(address), which floating IP \(floatingIP.address) (\(floatingIP.id)) translates to"
                        + " (expected addresses keeping it; move or release the floating IP first)")
            }
        }
    }
}
