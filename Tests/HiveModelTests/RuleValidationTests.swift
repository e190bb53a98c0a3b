import HiveModel
import Testing

@Suite("Rule validation")
struct RuleValidationTests {
    func fields(_ conditions: RuleConditions, action: RuleAction = .accept) -> [String] {
        flaggedFields(Rule(chainId: ChainID(), conditions: conditions, action: action))
    }

    @Test func jumpToOwnChainRefused() {
        let chain = ChainID()
        #expect(flaggedFields(Rule(chainId: chain, action: .jump(ChainID()))) == [])
        #expect(flaggedFields(Rule(chainId: chain, action: .jump(chain))) == ["action.chainId"])
    }

    @Test(arguments: [UInt8(6), 17, 132])
    func portsWithTransportProtocol(_ number: UInt8) {
        #expect(fields(RuleConditions(ipProtocol: Match(number), sourcePorts: Match(PortRange(1024, 65535)))) == [])
        #expect(fields(RuleConditions(ipProtocol: Match(number), destinationPorts: .not(PortRange(22)))) == [])
    }

    @Test func portsNeedTransportProtocol() {
        #expect(fields(RuleConditions(destinationPorts: Match(PortRange(80)))) == ["conditions.destinationPorts"])
        #expect(fields(RuleConditions(ipProtocol: Match(1), sourcePorts: Match(PortRange(80)))) == ["conditions.sourcePorts"])
        #expect(fields(RuleConditions(ipProtocol: .not(6), destinationPorts: Match(PortRange(80)))) == ["conditions.destinationPorts"])
        let message = Rule(chainId: ChainID(), conditions: RuleConditions(ipProtocol: Match(1), sourcePorts: Match(PortRange(80))), action: .drop)
            .validationErrors.map(\.description)
        #expect(message == ["conditions.sourcePorts: '80' needs ipProtocol 6 (TCP), 17 (UDP) or 132 (SCTP), not inverted; ipProtocol is 1"])
    }

    @Test func portRangeStartNotAboveEnd() {
        #expect(fields(RuleConditions(ipProtocol: Match(6), sourcePorts: Match(PortRange(start: 80, end: 80)))) == [])
        #expect(fields(RuleConditions(ipProtocol: Match(6), sourcePorts: Match(PortRange(start: 443, end: 80)))) == ["conditions.sourcePorts"])
        #expect(fields(RuleConditions(ipProtocol: Match(6), destinationPorts: Match(PortRange(start: 2, end: 1)))) == ["conditions.destinationPorts"])
    }

    @Test func icmpFieldsNeedICMP() {
        #expect(fields(RuleConditions(ipProtocol: Match(1), icmpType: Match(8), icmpCode: Match(0))) == [])
        #expect(fields(RuleConditions(ipProtocol: Match(1), icmpType: .not(3))) == [])
        #expect(fields(RuleConditions(icmpType: Match(8))) == ["conditions.icmpType"])
        #expect(fields(RuleConditions(ipProtocol: Match(6), icmpType: Match(8))) == ["conditions.icmpType"])
        #expect(fields(RuleConditions(ipProtocol: .not(1), icmpType: Match(8))) == ["conditions.icmpType"])
        #expect(fields(RuleConditions(ipProtocol: Match(17), icmpType: Match(3), icmpCode: Match(1))) == ["conditions.icmpType", "conditions.icmpCode"])
    }

    @Test func icmpCodeNeedsType() {
        #expect(fields(RuleConditions(ipProtocol: Match(1), icmpCode: Match(0))) == ["conditions.icmpCode"])
    }

    @Test func laterFragmentsHaveNoL4Header() {
        let ports = RuleConditions(ipProtocol: Match(6), destinationPorts: Match(PortRange(80)))
        var conditions = ports
        for policy in [FragmentPolicy.any, .unfragmented, .first] {
            conditions.fragments = Match(policy)
            #expect(fields(conditions) == [])
        }
        conditions.fragments = .not(.later)
        #expect(fields(conditions) == [])
        conditions.fragments = Match(.later)
        #expect(fields(conditions) == ["conditions.fragments"])
        #expect(fields(RuleConditions(ipProtocol: Match(1), icmpType: Match(8), fragments: Match(.later))) == ["conditions.fragments"])
        #expect(fields(RuleConditions(ipProtocol: Match(6), fragments: Match(.later))) == [])
    }

    @Test func prefixesNeedNetworkForm() {
        #expect(fields(RuleConditions(sourcePrefix: Match(cidr("10.0.0.0/8")), destinationPrefix: .not(cidr("192.0.2.1/32")))) == [])
        #expect(fields(RuleConditions(sourcePrefix: Match(cidr("10.0.0.1/8")))) == ["conditions.sourcePrefix"])
        #expect(fields(RuleConditions(destinationPrefix: .not(cidr("192.0.2.1/24")))) == ["conditions.destinationPrefix"])
    }

    @Test func portListsAreNonEmptyWithoutRepeats() {
        let port = PortID()
        #expect(fields(RuleConditions(inPorts: Match([port]), outPorts: .not([PortID(), port]))) == [])
        #expect(fields(RuleConditions(inPorts: Match([]))) == ["conditions.inPorts"])
        #expect(fields(RuleConditions(outPorts: Match([port, port]))) == ["conditions.outPorts[1]"])
    }

    @Test func emptyConditionsMatchEverything() {
        #expect(RuleConditions().isEmpty)
        #expect(!RuleConditions(connectionState: Match(.established)).isEmpty)
        #expect(fields(RuleConditions()) == [])
    }
}

extension PortRange {
    init(_ start: UInt16, _ end: UInt16) { self.init(start: start, end: end) }
}
