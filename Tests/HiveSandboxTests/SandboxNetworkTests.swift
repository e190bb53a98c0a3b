#if os(Linux)
import Foundation
import HiveSandbox
import Testing

// Real namespaces, veths and pings. Each test has its own prefix and removes
// everything it made in a `defer`, so the tests may run in parallel; traffic
// only ever goes to addresses inside the test's own namespaces.
// Serialized: namespaces made and deleted in parallel queue on the kernel's rtnl lock.
@Suite("Sandbox network of namespaces", .serialized, .enabled(if: SandboxPrivileges.isRoot, "needs root to create namespaces"))
struct SandboxNetworkTests {
    init() throws {
        // Fail with the package to install rather than with a confusing command error.
        try SandboxTools.check(["ip", "ethtool", "ping"])
    }

    @Test func hostsPingEachOtherOverTheUnderlay() async throws {
        try await onOwnThread {
            let network = twoHostNetwork(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()

            let reply = try NetworkNamespace.run(network.hosts[0].name, ["ping", "-c", "1", "-W", "2", "100.64.0.2"])
            #expect(reply.contains("1 received"))
            let back = try NetworkNamespace.run(network.hosts[1].name, ["ping", "-c", "1", "-W", "2", "100.64.0.1"])
            #expect(back.contains("1 received"))

            let uplink = try #require(interfaces(in: network.hosts[0].name, device: "ul0").first)
            #expect(uplink.mtu == 1500)
            #expect(uplink.addrInfo?.filter { $0.family == "inet" }.map { "\($0.local)/\($0.prefixlen)" } == ["100.64.0.1/24"])
            let ports = try interfaces(in: network.underlayNamespace).map(\.ifname).sorted()
            #expect(ports == ["lo", network.underlayBridge, network.underlayPort(forHostAt: 0), network.underlayPort(forHostAt: 1)].sorted())
        }
    }

    @Test func vmEth0HasItsMACAddressMTUAndDefaultRoute() async throws {
        try await onOwnThread {
            let network = twoHostNetwork(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()

            for vm in network.vms {
                let eth0 = try #require(interfaces(in: vm.name, device: "eth0").first)
                #expect(eth0.address == vm.mac)
                #expect(eth0.mtu == vm.mtu)
                #expect(eth0.flags.contains("UP") && eth0.flags.contains("LOWER_UP"))
                #expect(eth0.addrInfo?.filter { $0.family == "inet" }.map { "\($0.local)/\($0.prefixlen)" } == [vm.address])
                let defaults = try routes(in: vm.name).filter { $0.dst == "default" }
                #expect(defaults.map(\.gateway) == [vm.gateway])
                #expect(defaults.map(\.dev) == ["eth0"])
                let loopback = try #require(interfaces(in: vm.name, device: "lo").first)
                #expect(loopback.flags.contains("UP"))
            }
        }
    }

    @Test func hostEndOfEachVMIsInItsHostWithoutAddress() async throws {
        try await onOwnThread {
            let network = twoHostNetwork(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()

            for vm in network.vms {
                let end = try #require(interfaces(in: vm.host, device: vm.hostInterface).first)
                #expect(end.mtu == vm.mtu)
                #expect(end.flags.contains("UP"))
                #expect((end.addrInfo ?? []).isEmpty, "the host end carries no address, not even IPv6 link-local")
                let otherHost = try #require(network.hosts.first { $0.name != vm.host })
                #expect(throws: CommandFailure.self) { try interfaces(in: otherHost.name, device: vm.hostInterface) }
            }
            // Nothing was left in the root namespace.
            let rootLinks = try RootNamespace.run(["ip", "-o", "link", "show"])
            #expect(!rootLinks.contains(network.prefix))

            // The pair really joins the VM to its host: with the gateway address
            // put on the host end for a moment, the VM pings it.
            let vm = network.vms[0]
            let gateway = try #require(vm.gateway)
            try NetworkNamespace.run(vm.host, ["ip", "address", "add", gateway + "/24", "dev", vm.hostInterface])
            let reply = try NetworkNamespace.run(vm.name, ["ping", "-c", "1", "-W", "2", gateway])
            #expect(reply.contains("1 received"))
            let end = try #require(interfaces(in: vm.host, device: vm.hostInterface).first)
            #expect((end.stats64?.rx.packets ?? 0) > 0)
        }
    }

    /// A VM's interface is left as a real VM's is: checksum and TCP
    /// segmentation offload on (the datapath takes offloaded frames).
    @Test func vmInterfacesKeepTheirDefaultOffloads() async throws {
        try await onOwnThread {
            let network = twoHostNetwork(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()

            for vm in network.vms {
                let vmSide = try NetworkNamespace.run(vm.name, ["ethtool", "-k", "eth0"])
                #expect(vmSide.contains("tx-checksumming: on"))
                #expect(vmSide.contains("tx-tcp-segmentation: on"))
                let hostSide = try NetworkNamespace.run(vm.host, ["ethtool", "-k", vm.hostInterface])
                #expect(hostSide.contains("tx-checksumming: on"))
            }
        }
    }

    @Test func destroyRemovesThisNetworkOnlyAndIsIdempotent() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let keep = "test-keep-" + prefix.dropFirst(5).dropLast()
            try RootNamespace.run(["ip", "netns", "add", keep])
            defer { _ = try? RootNamespace.run(["ip", "netns", "delete", keep]) }
            let network = twoHostNetwork(prefix: prefix)
            defer { network.destroy() }
            try network.create()
            #expect(namespaces(startingWith: prefix) == network.namespaces.sorted())
            let server = try NetworkNamespace.start(network.vms[0].name, ["sleep", "30"])
            defer { stop(server) }

            network.destroy()
            #expect(namespaces(startingWith: prefix) == [])
            #expect(NetworkNamespace.exists(keep))
            #expect(waitForExit(server), "a process left in a VM namespace is killed with it")
            network.destroy()
            #expect(namespaces(startingWith: prefix) == [])
            #expect(NetworkNamespace.exists(keep))
        }
    }

    @Test func destroyAllCleansUpAfterACrashedRun() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let keep = "test-keep-" + prefix.dropFirst(5).dropLast()
            try RootNamespace.run(["ip", "netns", "add", keep])
            defer { _ = try? RootNamespace.run(["ip", "netns", "delete", keep]) }
            defer { SandboxNetwork.destroyAll(prefix: prefix) }

            // A crashed run: a network, a stray half-built namespace, a process left running.
            try twoHostNetwork(prefix: prefix).create()
            try RootNamespace.run(["ip", "netns", "add", prefix + "stray"])
            let leftover = try NetworkNamespace.start(prefix + "h1", ["sleep", "30"])
            defer { stop(leftover) }
            #expect(namespaces(startingWith: prefix).count == 6)

            SandboxNetwork.destroyAll(prefix: prefix)
            #expect(namespaces(startingWith: prefix) == [])
            #expect(NetworkNamespace.exists(keep))
            #expect(waitForExit(leftover))
        }
    }

    @Test func badAddressFailsClearlyAndLeavesNothing() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            var network = twoHostNetwork(prefix: prefix)
            network.vms[0].address = "10.0.1.300/24"
            defer { network.destroy() }

            let error = try #require(throws: SandboxError.self) { try network.create() }
            #expect(error.description.contains("vms[0].address: '10.0.1.300/24' is not an IPv4 address with a prefix length"))
            #expect(namespaces(startingWith: prefix) == [])
        }
    }

    @Test func failureHalfwayRemovesWhatCreateMadeAndNothingElse() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let network = twoHostNetwork(prefix: prefix)
            // The second VM's namespace already exists, so create fails after
            // building the underlay, both hosts and the first VM.
            let squatter = network.vms[1].name
            try RootNamespace.run(["ip", "netns", "add", squatter])
            defer { SandboxNetwork.destroyAll(prefix: prefix) }

            let failure = try #require(throws: CommandFailure.self) { try network.create() }
            #expect(failure.exitStatus != nil && failure.exitStatus != 0)
            #expect(failure.description.contains("netns add \(squatter)"))
            #expect(failure.description.contains("exists"))
            #expect(namespaces(startingWith: prefix) == [squatter], "only the namespace create did not make is left")
        }
    }

    @Test func startedCommandRunsInItsNamespaceAndStopsOnTerminate() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let network = SandboxNetwork(prefix: prefix, hosts: [.init(name: prefix + "h1", underlayAddress: "100.64.0.1/24")])
            defer { network.destroy() }
            try network.create()
            let output = Pipe()
            let listing = try NetworkNamespace.start(network.hosts[0].name, ["ip", "-o", "link", "show", "ul0"], standardOutput: output.fileHandleForWriting)
            try output.fileHandleForWriting.close()  // the child has its own copy
            try #require(waitForExit(listing))
            #expect(listing.terminationStatus == 0)
            #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("ul0"))

            // SIGTERM must reach it, although the test runs on a thread that blocks signals.
            let server = try NetworkNamespace.start(network.hosts[0].name, ["sleep", "30"])
            defer { stop(server) }
            server.terminate()
            try #require(waitForExit(server), "SIGTERM must stop it")
            #expect(server.terminationReason == .uncaughtSignal && server.terminationStatus == SIGTERM)
        }
    }

    @Test func commandsInAMissingNamespaceFailWithTheCommand() async throws {
        try await onOwnThread {
            let missing = uniquePrefix() + "none"
            let failure = try #require(throws: CommandFailure.self) {
                try NetworkNamespace.run(missing, ["true"])
            }
            #expect(failure.description.contains("netns exec \(missing)"))
            #expect(!failure.standardError.isEmpty)
        }
    }
}
#endif
