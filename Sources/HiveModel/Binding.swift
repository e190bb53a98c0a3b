/// Attaches an exterior port to a network interface (a tap or veth) on a
/// host, which is where that port's traffic enters and leaves. Admin-only.
public struct Binding: TopologyObject {
    public static let kind = ObjectKind.binding

    public var id: BindingID
    /// Always nil: bindings belong to no tenant.
    public var tenantId: String?
    public var hostId: HostID
    public var portId: PortID
    /// The Linux interface on the host, e.g. "tap1a2b3c4d".
    public var interfaceName: String

    public init(id: BindingID = BindingID(), hostId: HostID, portId: PortID, interfaceName: String) {
        self.id = id
        self.tenantId = nil
        self.hostId = hostId
        self.portId = portId
        self.interfaceName = interfaceName
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, hostId, portId, interfaceName
    }

    /// A host with bindings cannot be deleted; deleting the port unbinds it.
    public var references: [ObjectReference] {
        [
            ObjectReference(hostId, field: "hostId", onTargetDeletion: .refuse),
            ObjectReference(portId, field: "portId", onTargetDeletion: .cascade),
        ]
    }

    /// One binding per host interface, and one per port.
    public var uniqueKeys: [String] {
        [
            UniqueKey.hostInterface(hostId: hostId, interfaceName: interfaceName),
            UniqueKey.boundPort(portId),
        ]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkAdminOnly(tenantId, kind: Self.kind)
        if let problem = interfaceNameProblem(interfaceName) {
            problems.add("interfaceName", interfaceName, problem)
        }
        try problems.check()
    }
}
