import ArgumentParser
import HiveModel
import HivePacket
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

/// A router's external gateway: `--gateway-port`, `--snat-address`,
/// `--snat`/`--no-snat` and, on update, `--no-gateway`.
struct GatewaySettings: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The router's port leading outside (name or id; one of this router's ports): the tenant networks behind the router reach out through it, source-translated.",
        valueName: "port"))
    var gatewayPort: String?
    @Option(help: ArgumentHelp("The address the gateway translates to (default: the gateway port's own; `none` goes back to it).", valueName: "address"),
            transform: Parse.orNone(Parse.address))
    var snatAddress: Removable<IPv4.Address>?
    @Flag(inversion: .prefixedNo, help: "Translate sources leaving by the gateway (default on); --no-snat routes without translation.")
    var snat: Bool?
    @Flag(help: "Remove the gateway (update only).")
    var noGateway = false

    var changesAnything: Bool { gatewayPort != nil || snatAddress != nil || snat != nil || noGateway }

    func validate() throws {
        if noGateway && (gatewayPort != nil || snatAddress != nil || snat != nil) {
            throw ValidationError("--no-gateway removes the gateway: give it alone, without --gateway-port, --snat-address or --snat/--no-snat")
        }
    }

    /// Sets, changes or removes `router.gateway`. `--gateway-port` sets a new
    /// gateway (SNAT on to the port's address unless told otherwise); the
    /// other options change the current one.
    func apply(to router: inout Router, _ resolver: Resolver) async throws {
        if noGateway {
            router.gateway = nil
            return
        }
        var gateway: RouterGateway
        if let gatewayPort {
            gateway = RouterGateway(portId: try await resolver.portID(gatewayPort, router: router.id.description))
        } else if let current = router.gateway {
            gateway = current
        } else {
            guard changesAnything else { return }
            throw CLIError("router \(router.name) has no gateway: give --gateway-port PORT to set one")
        }
        if let snatAddress { gateway.snatAddress = snatAddress.value }
        if let snat { gateway.enableSNAT = snat }
        router.gateway = gateway
    }
}
