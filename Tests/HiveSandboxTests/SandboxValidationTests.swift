import Foundation
import HiveSandbox
import Testing

/// The fields `validate()` flags; runs nothing, so needs no root.
private func flaggedFields(_ network: SandboxNetwork) -> [String] {
    network.validationProblems().map(\.field)
}

@Suite("Sandbox network validation")
struct SandboxValidationTests {
    let network = twoHostNetwork(prefix: "hive-ab12-")

    @Test func theTestNetworkIsValid() async throws {
        try await onOwnThread {
            #expect(flaggedFields(network) == [])
            try network.validate()
            #expect(SandboxNetwork(hosts: []).validationProblems() == [])
        }
    }

    @Test(arguments: ["", "hive/", "hive x", "hivé-", "hive-toolong"])
    func refusedPrefixes(_ prefix: String) {
        var network = network
        network.prefix = prefix
        #expect(flaggedFields(network).first == "prefix")
    }

    @Test func namespacesMustStartWithThePrefixAndBeDistinct() {
        var network = network
        network.hosts[1].name = "other-h2"
        network.vms[1].host = "other-h2"
        network.vms[0].name = "hive-ab12-h1"
        network.vms[1].name = network.underlayNamespace
        #expect(flaggedFields(network) == ["hosts[1].name", "vms[0].name", "vms[1].name"])
        let problem = network.validationProblems()[0]
        #expect(problem.description == "hosts[1].name: 'other-h2' does not start with the prefix 'hive-ab12-', so teardown could not find it")
    }

    @Test(arguments: ["10.0.1.300/24", "10.0.1.10", "10.0.1.10/33", "10.0.1.10/0", "10.1/8", "10.0.1.10/24 ", "::1/128", "10.0.1.010x/24"])
    func refusedAddresses(_ address: String) {
        var network = network
        network.vms[0].address = address
        network.vms[0].gateway = nil
        network.hosts[0].underlayAddress = address
        #expect(flaggedFields(network) == ["hosts[0].underlayAddress", "vms[0].address"])
    }

    @Test func underlayAddressesAreDistinct() {
        var network = network
        network.hosts[1].underlayAddress = "100.64.0.1/16"
        #expect(flaggedFields(network) == ["hosts[1].underlayAddress"])
    }

    @Test(arguments: ["10.0.2.1", "10.0.1.10", "10.0.1", "gateway"])
    func refusedGateways(_ gateway: String) {
        var network = network
        network.vms[0].gateway = gateway
        #expect(flaggedFields(network) == ["vms[0].gateway"])
    }

    @Test(arguments: ["02:00:00:00:01", "02:00:00:00:01:0a:0b", "zz:00:00:00:01:0a", "0200.0000.010a", "01:00:5e:00:00:01", "00:00:00:00:00:00", "2:0:0:0:1:a"])
    func refusedMACs(_ mac: String) {
        var network = network
        network.vms[0].mac = mac
        #expect(flaggedFields(network) == ["vms[0].mac"])
    }

    @Test(arguments: [67, 65536, 0, -1])
    func refusedMTUs(_ mtu: Int) {
        var network = network
        network.vms[1].mtu = mtu
        #expect(flaggedFields(network) == ["vms[1].mtu"])
    }

    @Test func vmReferencesAndHostInterfaces() {
        var network = network
        network.vms[0].host = "hive-ab12-h9"
        network.vms[1].hostInterface = "hive-ab12-vm2xyz"
        #expect(flaggedFields(network) == ["vms[0].host", "vms[1].hostInterface"])

        network = self.network
        network.vms[1].host = network.vms[0].host
        network.vms[1].hostInterface = network.vms[0].hostInterface
        #expect(flaggedFields(network) == ["vms[1].hostInterface"])
        network.vms[1].hostInterface = "ul0"
        #expect(flaggedFields(network) == ["vms[1].hostInterface"])
    }

    @Test func generatedNamesFitInterfaceNames() {
        let network = self.network
        #expect(network.underlayPort(forHostAt: 9998).count == 15)
        #expect(network.underlayBridge.count <= 15)
        #expect(network.namespaces == ["hive-ab12-underlay", "hive-ab12-h1", "hive-ab12-h2", "hive-ab12-vm1", "hive-ab12-vm2"])
    }

    @Test func errorsSayWhatToDo() {
        #expect(SandboxError.notRoot(effectiveUserID: 1000).description.hasPrefix(
            "hive sandbox must run as root (it creates network namespaces and veth pairs)"))
        let missing = SandboxError.missingTool(name: "ethtool", debianPackage: "ethtool").description
        #expect(missing.contains("`ethtool`") && missing.contains("apt-get install ethtool"))
        let failure = CommandFailure(command: ["/usr/sbin/ip", "netns", "add", "a b"], outcome: .exited(1), standardError: "File exists")
        #expect(failure.description == "`/usr/sbin/ip netns add 'a b'` exited with status 1: File exists")
        #expect(failure.exitStatus == 1)
    }
}

@Suite("Running commands")
struct CommandTests {
    @Test func returnsStandardOutput() async throws {
        try await onOwnThread {
            let output = try RootNamespace.run(["printf", "a b\n"])
            #expect(output == "a b\n")
        }
    }

    @Test func failureCarriesStatusAndStandardError() async throws {
        try await onOwnThread {
            let failure = try #require(throws: CommandFailure.self) {
                try RootNamespace.run(["sh", "-c", "echo partial; echo oops >&2; exit 3"])
            }
            #expect(failure.outcome == .exited(3))
            #expect(failure.standardError == "oops")
            #expect(failure.description.hasSuffix("exited with status 3: oops"))
        }
    }

    @Test func missingExecutableIsNamed() async throws {
        try await onOwnThread {
            let failure = try #require(throws: CommandFailure.self) { try RootNamespace.run(["hive-no-such-tool", "x"]) }
            guard case .couldNotStart(let reason) = failure.outcome else {
                Issue.record("expected couldNotStart, got \(failure.outcome)")
                return
            }
            #expect(reason.contains("`hive-no-such-tool` was not found"))
        }
    }

    @Test func slowCommandIsKilledAtItsTimeout() async throws {
        try await onOwnThread {
            let started = ContinuousClock.now
            let failure = try #require(throws: CommandFailure.self) {
                try RootNamespace.run(["sleep", "10"], timeout: .milliseconds(200))
            }
            #expect(failure.outcome == .timedOut(after: .milliseconds(200)))
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func largeOutputDoesNotBlock() async throws {
        try await onOwnThread {
            let output = try RootNamespace.run(["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero >&2"])
            #expect(output.count == 1_000_000)
        }
    }
}
