import Foundation
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Host
import struct HiveModel.Port

/// A resource the CLI can name: its noun in messages, its command, its name.
protocol Nameable: TopLevelResource {
    /// "bridge", "port group"; used in messages.
    static var noun: String { get }
    /// The `hive` subcommand that manages it, for hints ("see `hive bridge list`").
    static var command: String { get }
    /// The object's name, if it has one (ports may be unnamed).
    var displayName: String? { get }
}

extension Bridge: Nameable {
    static var noun: String { "bridge" }
    static var command: String { "bridge" }
    var displayName: String? { name }
}
extension Router: Nameable {
    static var noun: String { "router" }
    static var command: String { "router" }
    var displayName: String? { name }
}
extension Port: Nameable {
    static var noun: String { "port" }
    static var command: String { "port" }
    var displayName: String? { name }
}
extension Chain: Nameable {
    static var noun: String { "chain" }
    static var command: String { "chain" }
    var displayName: String? { name }
}
extension PortGroup: Nameable {
    static var noun: String { "port group" }
    static var command: String { "port-group" }
    var displayName: String? { name }
}
extension IPAddressGroup: Nameable {
    static var noun: String { "IP address group" }
    static var command: String { "ip-group" }
    var displayName: String? { name }
}
extension SecurityGroup: Nameable {
    static var noun: String { "security group" }
    static var command: String { "security-group" }
    var displayName: String? { name }
}
extension Host: Nameable {
    static var noun: String { "host" }
    static var command: String { "host" }
    var displayName: String? { name }
}
extension TunnelZone: Nameable {
    static var noun: String { "tunnel zone" }
    static var command: String { "tunnel-zone" }
    var displayName: String? { name }
}

/// Turns what the user typed ("web", or an id) into an object.
///
/// A UUID is used as-is: the API says whether it exists. Anything else is a
/// name, matched exactly against the `name` of every object of the kind the
/// token can see; ports are matched within `--bridge`/`--router` when given,
/// else among all ports. No match or several matches is an error listing
/// what exists or the candidates' ids. Object names can never be UUIDs (the
/// model refuses them), so the two readings cannot collide. A port may also
/// be named "DEVICE/PORT" ("web/vm1"): the port named PORT on the bridge or
/// router named DEVICE, when a bridge or router has that name.
struct Resolver {
    let client: HiveClient

    init(_ client: HiveClient) { self.client = client }

    /// The id of the object named or identified by `reference`.
    func id<Object: Nameable>(_ reference: String, _ type: Object.Type) async throws -> ObjectID<Object> {
        if let id = ObjectID<Object>(parsing: reference) { return id }
        return try await object(reference, type).object.id
    }

    /// `id(_:_:)` for an optional option value.
    func optionalID<Object: Nameable>(_ reference: String?, _ type: Object.Type) async throws -> ObjectID<Object>? {
        guard let reference else { return nil }
        return try await id(reference, type)
    }

    /// For an update option: nil leaves the reference alone, "none" clears it.
    func change<Object: Nameable>(_ reference: String?, _ type: Object.Type) async throws -> ObjectID<Object>?? {
        guard let reference else { return .none }
        if reference == noneKeyword { return .some(nil) }
        return .some(try await id(reference, type))
    }

    /// The object named or identified by `reference`, as the API returns it.
    func object<Object: Nameable>(_ reference: String, _ type: Object.Type) async throws -> Revisioned<Object> {
        if let id = ObjectID<Object>(parsing: reference) { return try await client.get(id) }
        return try pick(reference, from: try await client.list(type), scope: nil)
    }

    /// A port by id, or by name on `bridge`/`router` (names or ids), or by name among all ports.
    func port(_ reference: String, bridge: String? = nil, router: String? = nil) async throws -> Revisioned<Port> {
        if bridge != nil && router != nil {
            throw CLIError("give --bridge or --router to say whose port '\(reference)' is, not both")
        }
        if let id = PortID(parsing: reference) { return try await client.get(id) }
        if let named = try await portOnNamedDevice(reference) { return named }
        if let bridge {
            let device = try await object(bridge, Bridge.self)
            return try pick(reference, from: try await client.ports(onDevice: device.object.id.uuid),
                            scope: "on bridge '\(device.object.name)'")
        }
        if let router {
            let device = try await object(router, Router.self)
            return try pick(reference, from: try await client.ports(onDevice: device.object.id.uuid),
                            scope: "on router '\(device.object.name)'")
        }
        return try pick(reference, from: try await client.list(Port.self), scope: nil,
                        hint: " (or name it DEVICE/PORT, or give --bridge or --router)")
    }

    /// A port named "DEVICE/PORT" ("web/vm1"): PORT on the bridge or router
    /// named DEVICE; nil when `reference` has no '/' or no device has that name.
    private func portOnNamedDevice(_ reference: String) async throws -> Revisioned<Port>? {
        guard let slash = reference.firstIndex(of: "/") else { return nil }
        let device = String(reference[..<slash])
        let name = String(reference[reference.index(after: slash)...])
        let bridges = try await client.list(Bridge.self).filter { $0.object.name == device }
        let routers = try await client.list(Router.self).filter { $0.object.name == device }
        let devices = bridges.map { ("bridge", $0.object.id.uuid) } + routers.map { ("router", $0.object.id.uuid) }
        guard let (kind, id) = devices.first else { return nil }
        guard devices.count == 1 else {
            throw CLIError("\(devices.count) bridges and routers are named '\(device)' (in the port '\(reference)'); give the port's id instead")
        }
        return try pick(name, from: try await client.ports(onDevice: id), scope: "on \(kind) '\(device)'")
    }

    /// `port(_:bridge:router:)`'s id.
    func portID(_ reference: String, bridge: String? = nil, router: String? = nil) async throws -> PortID {
        if let id = PortID(parsing: reference) { return id }
        return try await port(reference, bridge: bridge, router: router).object.id
    }

    /// The one object in `candidates` named `name`, or an error saying what exists or what is ambiguous.
    private func pick<Object: Nameable>(
        _ name: String, from candidates: [Revisioned<Object>], scope: String?, hint: String = ""
    ) throws -> Revisioned<Object> {
        let matches = candidates.filter { $0.object.displayName == name }
        let scopeText = scope.map { " \($0)" } ?? ""
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            let known = candidates.compactMap(\.object.displayName).sorted()
            let knownText: String
            if known.isEmpty {
                knownText = "there are none yet (create one with `hive \(Object.command) create`)"
            } else if known.count <= 12 {
                knownText = "existing: " + known.joined(separator: ", ")
            } else {
                knownText = "\(known.count) exist; see `hive \(Object.command) list`"
            }
            throw CLIError("no \(Object.noun) named '\(name)'\(scopeText): \(knownText)")
        default:
            let ids = matches.map { match in
                match.object.tenantId.map { "\(match.object.id) (tenant \($0))" } ?? match.object.id.description
            }
            throw CLIError("""
                \(matches.count) \(Object.noun)s are named '\(name)'\(scopeText): \(ids.joined(separator: ", ")); \
                give the id instead\(hint)
                """)
        }
    }
}

/// Display names for ids in tables, fetched once per kind as needed.
/// Lookups never fail: an object the token cannot list shows as its id.
final class NameBook {
    let client: HiveClient
    private var names: [ObjectKind: [UUID: String]] = [:]
    private var ports: [UUID: Port] = [:]

    init(_ client: HiveClient) { self.client = client }

    /// The object's name, or its id when it has none or cannot be listed; "-" for nil.
    func name<Object: Nameable>(_ id: ObjectID<Object>?) async -> String {
        guard let id else { return "-" }
        return await table(Object.self)[id.uuid] ?? id.description
    }

    /// "bridge web" / "router edge" for a port's device.
    func device(of port: Port) async -> String {
        switch port.deviceKind {
        case .bridge: return "bridge \(await name(BridgeID(port.deviceId)))"
        case .router: return "router \(await name(RouterID(port.deviceId)))"
        }
    }

    /// "uplink (router edge)"; the id when the port has no name.
    func portLabel(_ id: PortID?) async -> String {
        guard let id else { return "-" }
        _ = await table(Port.self)
        guard let port = ports[id.uuid] else { return id.description }
        return "\(port.name ?? id.description) (\(await device(of: port)))"
    }

    private func table<Object: Nameable>(_ type: Object.Type) async -> [UUID: String] {
        if let cached = names[Object.kind] { return cached }
        var table: [UUID: String] = [:]
        if let objects = try? await client.list(type) {
            for item in objects {
                if let name = item.object.displayName { table[item.object.id.uuid] = name }
                if let port = item.object as? Port { ports[port.id.uuid] = port }
            }
        }
        names[Object.kind] = table
        return table
    }
}
