import HiveModel
import Testing

/// A user who writes a bad document sees which field and which value.
@Suite("Decoding errors")
struct DecodingErrorTests {
    static let portHead = #""id":"00000000-0000-4000-8000-000000000003","deviceId":"00000000-0000-4000-8000-000000000002""#

    @Test func badPrefixNamesFieldAndValue() {
        let message = decodingMessage(Port.self, #"{\#(Self.portHead),"deviceKind":"router","address":"10.0.0.1","subnet":"10.0.0.0/33"}"#)
        #expect(message == "field 'subnet': '10.0.0.0/33' is not an IPv4 CIDR (expected like 10.0.0.0/24)")
    }

    @Test func badAddressAndMAC() {
        #expect(decodingMessage(Port.self, #"{\#(Self.portHead),"deviceKind":"router","address":"10.0.0.256"}"#)
            == "field 'address': '10.0.0.256' is not an IPv4 address (expected dotted quad like 192.0.2.1)")
        #expect(decodingMessage(Port.self, #"{\#(Self.portHead),"deviceKind":"bridge","mac":"02:00:00:00:00"}"#)
            == "field 'mac': '02:00:00:00:00' is not a MAC address (expected like 02:00:00:00:00:01)")
    }

    @Test func badIDsNameTheirField() {
        #expect(decodingMessage(Port.self, #"{"id":"00000000-0000-4000-8000-000000000003","deviceId":"router-1","deviceKind":"router"}"#)
            == "field 'deviceId': 'router-1' is not an object id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)")
        #expect(decodingMessage(Bridge.self, #"{"id":"web","name":"web"}"#)
            == "field 'id': 'web' is not an object id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)")
    }

    @Test func nestedPathsUseIndexes() {
        let json = #"{"id":"00000000-0000-4000-8000-00000000000b","name":"z","members":[{"hostId":"00000000-0000-4000-8000-000000000008","address":"192.0.2.1"},{"hostId":"00000000-0000-4000-8000-000000000009","address":"192.0.2"}]}"#
        #expect(decodingMessage(TunnelZone.self, json) == "field 'members[1].address': '192.0.2' is not an IPv4 address (expected dotted quad like 192.0.2.1)")
    }

    @Test func missingFieldIsNamed() {
        #expect(decodingMessage(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001"}"#) == "field 'name' is missing")
        #expect(decodingMessage(Rule.self, #"{"id":"00000000-0000-4000-8000-000000000006","chainId":"00000000-0000-4000-8000-000000000004","action":{"type":"jump"}}"#)
            == "field 'action.chainId' is missing")
    }

    @Test func wrongJSONTypeSaysWhatIsExpected() throws {
        let message = try #require(decodingMessage(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001","name":"web","adminStateUp":"yes"}"#))
        #expect(message.hasPrefix("field 'adminStateUp': expected true or false"))
        let weight = try #require(decodingMessage(Route.self, #"{"id":"00000000-0000-4000-8000-000000000009","routerId":"00000000-0000-4000-8000-000000000002","destination":"10.0.0.0/8","weight":"heavy"}"#))
        #expect(weight.hasPrefix("field 'weight': expected a whole number from 0 to 4294967295"))
    }

    /// Works around swiftlang/swift-foundation#1604, which drops the path for these.
    @Test func numbersThatDoNotFitNameFieldAndValue() {
        let bridge = #"{"id":"00000000-0000-4000-8000-000000000001","name":"web","tunnelKey":-1}"#
        #expect(decodingMessage(Bridge.self, bridge) == "field 'tunnelKey': '-1' is not a whole number from 0 to 4294967295")
        let route = #"{"id":"00000000-0000-4000-8000-000000000009","routerId":"00000000-0000-4000-8000-000000000002","destination":"10.0.0.0/8","weight":1.5}"#
        #expect(decodingMessage(Route.self, route) == "field 'weight': '1.5' is not a whole number from 0 to 4294967295")
        let rule = #"{"id":"00000000-0000-4000-8000-000000000006","chainId":"00000000-0000-4000-8000-000000000004","action":{"type":"drop"},"conditions":{"ipProtocol":{"value":256},"sourcePorts":{"value":{"start":0,"end":70000}}}}"#
        #expect(decodingMessage(Rule.self, rule) == "field 'conditions.ipProtocol.value': '256' is not a whole number from 0 to 255")
        let ports = #"{"id":"00000000-0000-4000-8000-000000000006","chainId":"00000000-0000-4000-8000-000000000004","action":{"type":"drop"},"conditions":{"sourcePorts":{"value":{"start":0,"end":70000}}}}"#
        #expect(decodingMessage(Rule.self, ports) == "field 'conditions.sourcePorts.value.end': '70000' is not a whole number from 0 to 65535")
        let dhcp = #"{"id":"00000000-0000-4000-8000-00000000000e","bridgeId":"00000000-0000-4000-8000-000000000001","subnet":"10.0.0.0/24","rangeStart":"10.0.0.100","rangeEnd":"10.0.0.200","mtu":1e400}"#
        #expect(decodingMessage(DHCPSubnet.self, dhcp) == "field 'mtu': the number is not a whole number from 0 to 65535")
    }

    @Test func unknownEnumValueNamesField() throws {
        let message = try #require(decodingMessage(Route.self, #"{"id":"00000000-0000-4000-8000-000000000009","routerId":"00000000-0000-4000-8000-000000000002","destination":"10.0.0.0/8","kind":"drop"}"#))
        #expect(message.hasPrefix("field 'kind'"))
        #expect(message.contains("drop"))
    }

    @Test func unknownActionTypeListsAcceptedTypes() {
        let json = #"{"id":"00000000-0000-4000-8000-000000000006","chainId":"00000000-0000-4000-8000-000000000004","action":{"type":"masquerade"}}"#
        #expect(decodingMessage(Rule.self, json)
            == "field 'action.type': 'masquerade' is not a rule action type (expected one of: accept, drop, reject, jump, return, continue, snat, dnat)")
    }

    @Test func malformedJSONSaysSo() throws {
        let message = try #require(decodingMessage(Bridge.self, #"{"id": "#))
        #expect(message.hasPrefix("not valid JSON"))
        let notObject = try #require(decodingMessage(Bridge.self, "[]"))
        #expect(notObject.hasPrefix("document: expected an object"))
    }

    @Test func nullForRequiredField() throws {
        let message = try #require(decodingMessage(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001","name":null}"#))
        #expect(message.hasPrefix("field 'name'"))
    }

    @Test func otherErrorsAreDescribed() {
        #expect(describeDecodingError(ModelError.invalid([FieldError(field: "name", value: "", problem: "must not be empty")])) == "name must not be empty")
    }
}
