import Foundation
import HiveModel
import Testing

@Suite("Object ids and kinds")
struct ObjectIDTests {
    @Test func kindsKeepTheirStoreNames() {
        #expect(ObjectKind.allCases.map(\.rawValue) == [
            "bridge", "router", "port", "route", "chain", "rule", "port-group", "ip-address-group",
            "host", "tunnel-zone", "binding", "dhcp-subnet", "security-group", "security-group-rule", "floating-ip",
        ])
        #expect(Bridge.kind == .bridge)
        #expect(PortGroup.kind == .portGroup)
        #expect(IPAddressGroup.kind == .ipAddressGroup)
        #expect(TunnelZone.kind == .tunnelZone)
        #expect(DHCPSubnet.kind == .dhcpSubnet)
        #expect(SecurityGroup.kind == .securityGroup)
        #expect(SecurityGroupRule.kind == .securityGroupRule)
    }

    @Test func parsesEitherCaseAndPrintsLowercase() throws {
        let id = try #require(PortID(parsing: "3F2504E0-4F89-11D3-9A0C-0305E82C3301"))
        #expect(id.description == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        #expect(PortID(parsing: id.description) == id)
    }

    @Test(arguments: ["", "web", "3f2504e0-4f89-11d3-9a0c-0305e82c330", "3f2504e04f8911d39a0c0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301 "])
    func rejectsNonUUIDs(_ text: String) {
        #expect(BridgeID(parsing: text) == nil)
    }

    @Test func codesAsALowercaseString() throws {
        let id = BridgeID(try #require(UUID(uuidString: "3F2504E0-4F89-11D3-9A0C-0305E82C3301")))
        let bytes = try ModelJSON.encode([id])
        #expect(String(decoding: bytes, as: UTF8.self) == #"["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]"#)
        #expect(try ModelJSON.decode([BridgeID].self, from: bytes) == [id])
    }

    @Test func randomIDsDiffer() {
        #expect(RouterID() != RouterID())
    }

    @Test func ordersLikeTheirStrings() {
        var generator = SeededGenerator(seed: 7)
        let ids: [RuleID] = (0..<200).map { _ in generator.nextID() }
        #expect(ids.sorted().map(\.description) == ids.map(\.description).sorted())
        let low: RuleID = fixedID(1)
        let high: RuleID = fixedID(2)
        #expect(low < high)
        #expect(!(high < low))
        #expect(!(low < low))
    }
}
