import HiveModel
import Testing

/// Name, tenant and admin-only rules shared by every named object.
@Suite("Names and tenants")
struct NameValidationTests {
    @Test(arguments: ["web", "a", "web tier", "café-ñ", "tenant/web", " padded ", String(repeating: "x", count: 255), String(repeating: "é", count: 127)])
    func acceptedNames(_ name: String) {
        #expect(flaggedFields(Bridge(name: name)) == [])
        #expect(flaggedFields(Router(name: name)) == [])
        #expect(flaggedFields(Chain(name: name)) == [])
        #expect(flaggedFields(PortGroup(name: name)) == [])
        #expect(flaggedFields(IPAddressGroup(name: name)) == [])
        #expect(flaggedFields(TunnelZone(name: name)) == [])
        #expect(flaggedFields(Port(bridge: BridgeID(), name: name)) == [])
    }

    @Test(arguments: [
        "", String(repeating: "x", count: 256), String(repeating: "é", count: 128), "web\ttier", "line\n", "\u{7F}",
        " ", "\t ", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    ])
    func refusedNames(_ name: String) {
        #expect(flaggedFields(Bridge(name: name)) == ["name"])
        #expect(flaggedFields(Router(name: name)) == ["name"])
        #expect(flaggedFields(Chain(name: name)) == ["name"])
        #expect(flaggedFields(PortGroup(name: name)) == ["name"])
        #expect(flaggedFields(IPAddressGroup(name: name)) == ["name"])
        #expect(flaggedFields(TunnelZone(name: name)) == ["name"])
        #expect(flaggedFields(Port(bridge: BridgeID(), name: name)) == ["name"])
    }

    @Test func nameErrorsSayWhatIsAccepted() {
        #expect(Bridge(name: "").validationErrors.map(\.description) == ["name must not be empty (expected 1 to 255 bytes of text)"])
        let long = String(repeating: "x", count: 300)
        #expect(Bridge(name: long).validationErrors == [FieldError(field: "name", value: long, problem: "is 300 bytes long (expected at most 255 bytes)")])
        #expect(Bridge(name: "3f2504e0-4f89-11d3-9a0c-0305e82c3301").validationErrors.first?.problem.contains("not a UUID") == true)
        #expect(Bridge(name: "a\u{1}b").validationErrors.map(\.description) == [#"name: 'a\u{01}b' contains a control character (expected printable text)"#])
    }

    @Test func longValuesAreShortenedInMessages() {
        let long = String(repeating: "x", count: 300)
        let description = FieldError(field: "name", value: long, problem: "is too long").description
        #expect(description == "name: '\(String(repeating: "x", count: 80))…' is too long")
    }

    @Test func everyProblemIsReported() {
        // Too long, a control character and a bad tenant, all at once.
        let bridge = Bridge(tenantId: "a/b", name: String(repeating: "\u{1}", count: 256))
        #expect(flaggedFields(bridge) == ["tenantId", "name", "name"])
        #expect(throws: ModelError.invalid(bridge.validationErrors)) { try bridge.validate() }
    }

    @Test func portNameIsOptional() {
        #expect(flaggedFields(Port(bridge: BridgeID())) == [])
    }

    @Test(arguments: ["tenant-a", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Tenant_A.b", String(repeating: "t", count: 255)])
    func acceptedTenants(_ tenant: String) {
        #expect(flaggedFields(Bridge(tenantId: tenant, name: "web")) == [])
        #expect(flaggedFields(Route(tenantId: tenant, routerId: RouterID(), destination: cidr("10.0.0.0/8"), kind: .blackhole)) == [])
        #expect(flaggedFields(Rule(tenantId: tenant, chainId: ChainID(), action: .accept)) == [])
    }

    @Test(arguments: ["", "-", "a/b", "a b", "a\nb", String(repeating: "t", count: 256)])
    func refusedTenants(_ tenant: String) {
        #expect(flaggedFields(Bridge(tenantId: tenant, name: "web")) == ["tenantId"])
        #expect(flaggedFields(Port(tenantId: tenant, bridge: BridgeID())) == ["tenantId"])
        #expect(flaggedFields(Route(tenantId: tenant, routerId: RouterID(), destination: cidr("10.0.0.0/8"), kind: .blackhole)) == ["tenantId"])
        #expect(flaggedFields(Rule(tenantId: tenant, chainId: ChainID(), action: .accept)) == ["tenantId"])
        #expect(flaggedFields(DHCPSubnet(tenantId: tenant, bridgeId: BridgeID(), subnet: cidr("10.0.0.0/24"), rangeStart: ip("10.0.0.10"), rangeEnd: ip("10.0.0.20"))) == ["tenantId"])
    }

    @Test func adminObjectsRefuseATenant() {
        var host = Host(name: "compute-1")
        var zone = TunnelZone(name: "underlay")
        var binding = Binding(hostId: HostID(), portId: PortID(), interfaceName: "tap0")
        #expect(flaggedFields(host) == [] && flaggedFields(zone) == [] && flaggedFields(binding) == [])
        host.tenantId = "tenant-a"
        zone.tenantId = "tenant-a"
        binding.tenantId = "tenant-a"
        #expect(flaggedFields(host) == ["tenantId"])
        #expect(flaggedFields(zone) == ["tenantId"])
        #expect(flaggedFields(binding) == ["tenantId"])
        #expect(host.validationErrors.first?.description == "tenantId: 'tenant-a' must be absent: a host is an admin-only object")
    }
}
