#if os(Linux)
import Foundation
import HiveDatapath
import HivePacket
import Synchronization
import Testing

extension PolicyHandler: FlowTagNaming {
    func flowTagNames() -> [FlowTag: String] { [Self.policyTag: "policy"] }
}

/// `Datapath.report()` from a thread that may block: the test bodies run on one.
func blockingReport(_ datapath: Datapath<PolicyHandler>) -> DatapathReport {
    let answer = Mutex<DatapathReport?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let report = await datapath.report()
        answer.withLock { $0 = report }
        done.signal()
    }
    done.wait()
    return answer.withLock { $0! }
}

// In the serialized suite: it makes namespaces too.
extension DatapathTests {
    @Test func aReportCopiesTheInstalledFlowsWithTheirCountersAndTags() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    try expectPing(from: network.vms[0].name, to: Topology.vm2Address, count: 3, interval: "0.2", replies: 3)
                    let report = blockingReport(datapath)
                    #expect(report.running)
                    #expect(report.capacity == 65_536)
                    #expect(report.statistics.flows == report.flows.count)
                    #expect(report.statistics.ports[Topology.vm1Key]?.name == network.vms[0].hostInterface)

                    let requests = report.flows.filter { $0.key.isICMPEchoRequest }
                    try #require(requests.count == 1, "one flow for the echo requests: \(report.flows.map(\.key))")
                    let request = requests[0]
                    #expect(request.key.inPort == Topology.vm1Key)
                    #expect(request.actions.outputs == [.local(portKey: Topology.vm2Key)])
                    // The first request went through the upcall; the flow counts the two that hit it.
                    #expect(request.packets == 2)
                    #expect(request.bytes == 2 * 98, "ping's default frames are 98 bytes")
                    #expect(request.tags == [PolicyHandler.policyTag, PolicyHandler.portTag(Topology.vm1Key)])
                    #expect(request.age >= request.idle)
                    #expect(request.hardTimeout == 120_000_000_000)
                    #expect(report.tagNames[PolicyHandler.policyTag] == "policy", "the handler names its tags")

                    // After an invalidation, a report shows the table without the flows it removed.
                    datapath.invalidate([PolicyHandler.portTag(Topology.vm1Key)])
                    let after = blockingReport(datapath)
                    #expect(after.flows.allSatisfy { $0.key.inPort != Topology.vm1Key })
                    #expect(after.flows.contains { $0.key.inPort == Topology.vm2Key })

                    datapath.stop()
                    let stopped = blockingReport(datapath)
                    #expect(!stopped.running && stopped.flows.isEmpty, "a stopped datapath answers at once")
                }
            }
        }
    }
}
#endif
