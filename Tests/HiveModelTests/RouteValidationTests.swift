import HiveModel
import Testing

@Suite("Route validation")
struct RouteValidationTests {
    func route(
        destination: String = "10.1.0.0/16", source: String = "0.0.0.0/0", nextHop: String? = "10.0.0.2",
        egress: PortID? = PortID(), weight: UInt32 = 100, kind: RouteKind = .normal
    ) -> Route {
        Route(
            routerId: RouterID(), destination: cidr(destination), source: cidr(source),
            nextHopGateway: nextHop.map(ip), egressPortId: egress, weight: weight, kind: kind)
    }

    @Test func acceptedRoutes() {
        #expect(flaggedFields(route()) == [])
        #expect(flaggedFields(route(destination: "0.0.0.0/0", source: "192.168.0.0/24", nextHop: nil)) == [])
        #expect(flaggedFields(route(destination: "10.0.0.9/32", weight: 1)) == [])
        #expect(flaggedFields(route(nextHop: nil, egress: nil, kind: .blackhole)) == [])
        #expect(flaggedFields(route(nextHop: nil, egress: nil, kind: .reject)) == [])
    }

    @Test func destinationAndSourceNeedNetworkForm() {
        #expect(flaggedFields(route(destination: "10.1.2.3/16")) == ["destination"])
        #expect(flaggedFields(route(source: "192.168.0.1/24")) == ["source"])
        #expect(route(destination: "10.1.2.3/16").validationErrors.map(\.description)
            == ["destination: '10.1.2.3/16' has host bits set (expected the network form 10.1.0.0/16)"])
    }

    @Test func weightAtLeastOne() {
        #expect(flaggedFields(route(weight: 0)) == ["weight"])
        #expect(flaggedFields(route(weight: UInt32.max)) == [])
    }

    @Test func normalRouteNeedsEgressPort() {
        #expect(flaggedFields(route(egress: nil)) == ["egressPortId"])
        #expect(flaggedFields(route(nextHop: nil, egress: nil)) == ["egressPortId"])
    }

    @Test(arguments: ["0.0.0.0", "255.255.255.255", "224.0.0.5", "239.255.255.250", "127.0.0.1"])
    func refusedNextHops(_ address: String) {
        #expect(flaggedFields(route(nextHop: address)) == ["nextHopGateway"])
    }

    @Test(arguments: [RouteKind.blackhole, .reject])
    func discardingRoutesForwardNowhere(_ kind: RouteKind) {
        #expect(flaggedFields(route(nextHop: nil, egress: PortID(), kind: kind)) == ["egressPortId"])
        #expect(flaggedFields(route(nextHop: "10.0.0.2", egress: nil, kind: kind)) == ["nextHopGateway"])
    }
}

@Suite("Chain, group and bridge validation")
struct ChainAndGroupValidationTests {
    @Test func chainListsEachRuleOnce() {
        let rule = RuleID()
        var chain = Chain(name: "in", ruleIds: [rule, RuleID()])
        #expect(flaggedFields(chain) == [])
        chain.ruleIds.append(rule)
        #expect(flaggedFields(chain) == ["ruleIds[2]"])
        #expect(chain.validationErrors.first?.value == rule.description)
    }

    @Test func addressGroupMembersAreNetworksListedOnce() {
        var group = IPAddressGroup(name: "office", addresses: [cidr("198.51.100.0/24"), cidr("203.0.113.7/32"), cidr("0.0.0.0/0")])
        #expect(flaggedFields(group) == [])
        group.addresses.append(cidr("198.51.100.9/24"))
        #expect(flaggedFields(group) == ["addresses[3]"])
        group.addresses[3] = cidr("203.0.113.7/32")
        #expect(flaggedFields(group) == ["addresses[3]"])
    }
}
