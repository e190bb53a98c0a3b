import HiveDatapath
import Testing
@testable import HiveAgent

/// What the datapath tells the control plane must not be lost where losing
/// it would leave a port unbound: a learning storm on the bounded stream
/// does not push a port failure out.
@Suite struct UpcallEventTests {
    @Test func aPortFailureSurvivesALearningStorm() async {
        let (events, learning) = AsyncStream<UpcallEvent>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let (control, lossless) = AsyncStream<UpcallEvent>.makeStream(bufferingPolicy: .unbounded)
        let upcalls = SimulationUpcalls(shared: SharedView(), events: learning, control: lossless)
        upcalls.portFailed(portKey: 7, error: SystemError("receive on", "interface tap7", code: 19))
        // Nobody reads while a thousand learning events arrive.
        for _ in 0..<1000 { learning.yield(.refreshed(macs: [], arps: [])) }
        learning.finish()
        lossless.finish()
        var kept = 0
        for await _ in events { kept += 1 }
        #expect(kept == 16, "the bounded stream kept only the newest")
        var failed: [UInt32] = []
        for await event in control {
            if case .portFailed(let key, let reason) = event {
                failed.append(key)
                #expect(reason.contains("tap7"))
            }
        }
        #expect(failed == [7], "the port failure reached the control plane")
    }
}
