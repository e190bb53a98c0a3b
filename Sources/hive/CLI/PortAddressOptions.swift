import ArgumentParser
import HiveModel
import HivePacket
import struct HiveModel.Port

/// A port's addressing, for `port create` and `port update`.
///
/// `--address` reads by the port's device: a router port has one address
/// with its subnet length (10.0.1.1/24); a bridge port has fixed IPs, plain
/// addresses of the bridge's DHCP subnets (10.0.1.11) or `auto`. The other
/// flags are for bridge ports only.
struct PortAddressOptions: ParsableArguments {
    @Option(name: .customLong("address"), help: ArgumentHelp("""
        Router ports: the router's address with the subnet length, like 10.0.1.1/24. Bridge ports: \
        the VM's address, like 10.0.1.11, inside a DHCP subnet of the bridge, or auto for a free \
        one of its range; repeatable (on update, replaces the addresses).
        """, valueName: "address"))
    var addresses: [String] = []
    @Option(name: .customLong("allowed-address"), help: ArgumentHelp("""
        Bridge ports: another address or network the VM may send from, optionally with `=` and the \
        MAC it may use with it (default: the port's MAC), like 10.0.1.250=02:00:00:00:00:99; \
        repeatable (on update, replaces the pairs).
        """, valueName: "address[=mac]"), transform: Parse.allowedAddressPair)
    var allowedAddresses: [AllowedAddressPair] = []
    @Option(help: """
        Bridge ports: on (the default) drops frames whose source MAC or address is not the port's; \
        off lets the VM use any, and the port learns its MACs.
        """)
    var portSecurity: Switch?
    @Option(help: ArgumentHelp("""
        Bridge ports with port security off: the most MACs learned on the port at once, \
        \(Port.macLimitRange.lowerBound) to \(Port.macLimitRange.upperBound) \
        (default \(Port.defaultMACLimit); `none` on update restores the default).
        """, valueName: "count"), transform: Parse.orNone(Parse.macLimit))
    var macLimit: Removable<Int>?

    var changesAnything: Bool {
        !addresses.isEmpty || !allowedAddresses.isEmpty || portSecurity != nil || macLimit != nil
    }

    /// The bridge-only flags given, as typed.
    var bridgeOnlyFlags: [String] {
        (allowedAddresses.isEmpty ? [] : ["--allowed-address"]) + (portSecurity == nil ? [] : ["--port-security"])
            + (macLimit == nil ? [] : ["--mac-limit"])
    }

    /// Refuses flags that do not fit a port of `kind`, and `--address`
    /// values that do not read as that kind's addresses.
    func check(for kind: DeviceKind) throws {
        switch kind {
        case .router:
            if !bridgeOnlyFlags.isEmpty {
                throw ValidationError("only bridge ports take \(bridgeOnlyFlags.joined(separator: ", ")); this is a router port")
            }
            if addresses.count > 1 {
                throw ValidationError("--address: a router port has one address (expected --address once, like --address 10.0.1.1/24)")
            }
            _ = try routerAddress()
        case .bridge:
            _ = try fixedIPs()
        }
    }

    /// Sets what was given on `port`; the rest stays.
    func apply(to port: inout Port) throws {
        try check(for: port.deviceKind)
        switch port.deviceKind {
        case .router:
            if let interface = try routerAddress() {
                port.address = interface.address
                port.subnet = interface.network
            }
        case .bridge:
            if !addresses.isEmpty { port.fixedIPs = try fixedIPs() }
            if !allowedAddresses.isEmpty { port.allowedAddressPairs = allowedAddresses }
            if let portSecurity { port.portSecurity = portSecurity.isOn }
            if let macLimit { port.macLimit = macLimit.value }
        }
    }

    private func routerAddress() throws -> IPv4.Prefix? {
        try addresses.first.map { try parseAddress($0, Parse.interfaceAddress) }
    }

    private func fixedIPs() throws -> [IPv4.Address] {
        try addresses.map { try parseAddress($0, Parse.fixedIP) }
    }

    /// `--address` is parsed once the device is known, so its errors are worded here.
    private func parseAddress<Value>(_ text: String, _ parse: (String) throws -> Value) throws -> Value {
        do {
            return try parse(text)
        } catch let error as ValueError {
            throw ValidationError("--address '\(text)': \(error)")
        }
    }
}
