import ArgumentParser
import HiveModel
import struct HiveModel.Port

/// Bridges, routers and ports each have an admin state and two chains.
protocol ChainedDevice {
    var adminStateUp: Bool { get set }
    var inboundChainId: ChainID? { get set }
    var outboundChainId: ChainID? { get set }
}

extension Bridge: ChainedDevice {}
extension Router: ChainedDevice {}
extension Port: ChainedDevice {}

/// `--admin-state`, `--inbound-chain`, `--outbound-chain`, for create and update.
struct DeviceSettings: ParsableArguments {
    @Option(help: "up, or down to drop every packet passing through.")
    var adminState: AdminState?
    @Option(help: ArgumentHelp("A chain applied to packets coming in (name or id; `none` removes it).", valueName: "chain"))
    var inboundChain: String?
    @Option(help: ArgumentHelp("A chain applied to packets going out (name or id; `none` removes it).", valueName: "chain"))
    var outboundChain: String?

    var changesAnything: Bool { adminState != nil || inboundChain != nil || outboundChain != nil }

    func apply<Device: ChainedDevice>(to device: inout Device, _ resolver: Resolver) async throws {
        if let adminState { device.adminStateUp = adminState.isUp }
        if let change = try await resolver.change(inboundChain, Chain.self) { device.inboundChainId = change }
        if let change = try await resolver.change(outboundChain, Chain.self) { device.outboundChainId = change }
    }
}
