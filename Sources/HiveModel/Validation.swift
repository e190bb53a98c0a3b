import Foundation
import HivePacket

/// Collects every problem found in one object, so a user can fix them all in
/// one pass rather than one per attempt.
struct ValidationProblems {
    private(set) var errors: [FieldError] = []

    mutating func add(_ field: String, _ value: String, _ problem: String) {
        errors.append(FieldError(field: field, value: value, problem: problem))
    }

    mutating func add(_ field: String, _ value: some CustomStringConvertible, _ problem: String) {
        add(field, value.description, problem)
    }

    func check() throws(ModelError) {
        if !errors.isEmpty { throw .invalid(errors) }
    }
}

// MARK: Names

extension ValidationProblems {
    /// Object names: 1...255 bytes, printable, not blank, and never a UUID so
    /// a CLI argument is unambiguously either a name or an id.
    mutating func checkName(_ name: String, field: String = "name") {
        let bytes = name.utf8.count
        if bytes == 0 {
            add(field, "", "must not be empty (expected 1 to 255 bytes of text)")
            return
        }
        if bytes > 255 {
            add(field, name, "is \(bytes) bytes long (expected at most 255 bytes)")
        }
        if name.unicodeScalars.contains(where: isControl) {
            add(field, name, "contains a control character (expected printable text)")
        } else if name.allSatisfy(\.isWhitespace) {
            add(field, name, "is only whitespace (expected at least one visible character)")
        }
        if UUID(uuidString: name) != nil {
            add(field, name, "looks like an object id (expected a name that is not a UUID, so a name or an id can be given without ambiguity)")
        }
    }

    /// Tenant ids are the first segment of tenant-scoped unique keys
    /// ("<tenant>/<name>"), so they must not contain '/' or be the admin marker "-".
    mutating func checkTenant(_ tenantId: String?) {
        guard let tenantId else { return }
        let bytes = tenantId.utf8.count
        if bytes == 0 || bytes > 255 {
            add("tenantId", tenantId, "is \(bytes) bytes long (expected 1 to 255 bytes, or omit it for an admin-owned object)")
        }
        if tenantId.contains("/") || tenantId.unicodeScalars.contains(where: { isControl($0) || $0.properties.isWhitespace }) {
            add("tenantId", tenantId, "contains '/', whitespace or a control character (expected a tenant id such as 'tenant-a')")
        }
        if tenantId == UniqueKey.adminScope {
            add("tenantId", tenantId, "is reserved for admin-owned objects (omit tenantId instead)")
        }
    }

    /// Hosts, tunnel zones and bindings describe the physical deployment and
    /// belong to no tenant.
    mutating func checkAdminOnly(_ tenantId: String?, kind: ObjectKind) {
        guard let tenantId else { return }
        add("tenantId", tenantId, "must be absent: a \(kind) is an admin-only object")
    }
}

// MARK: Addresses

extension ValidationProblems {
    /// Destinations, DHCP subnets and matches must be written as networks, so
    /// "10.0.0.5/24" is caught as the likely typo it is.
    mutating func checkNetworkForm(_ prefix: IPv4.Prefix, field: String) {
        if !prefix.isNetwork {
            add(field, prefix, "has host bits set (expected the network form \(prefix.network))")
        }
    }

    /// A host-to-host address: not 0.0.0.0, multicast or limited broadcast;
    /// loopback only when `allowLoopback` (single-machine test setups tunnel over 127/8).
    mutating func checkUnicast(_ address: IPv4.Address, field: String, role: String, allowLoopback: Bool = true) {
        if address.isUnspecified {
            add(field, address, "is the unspecified address (expected a unicast \(role))")
        } else if address == .broadcast {
            add(field, address, "is the broadcast address (expected a unicast \(role))")
        } else if address.isMulticast {
            add(field, address, "is a multicast address (expected a unicast \(role))")
        } else if !allowLoopback && address.isLoopback {
            add(field, address, "is a loopback address (expected a unicast \(role) reachable off this machine)")
        }
    }

    /// A unicast MAC usable as a source address.
    mutating func checkUnicastMAC(_ mac: EthernetAddress, field: String) {
        if mac.isMulticast {
            add(field, mac, "is a multicast address (expected a unicast MAC with an even first octet, like 02:00:00:00:00:01)")
        } else if mac == .zero {
            add(field, mac, "is all zeros (expected a unicast MAC like 02:00:00:00:00:01)")
        }
    }

    /// An address handed to a host in `subnet`: inside it, and for subnets
    /// longer than /31 neither the network nor the broadcast address.
    mutating func checkHostAddress(_ address: IPv4.Address, in subnet: IPv4.Prefix, field: String, subnetRole: String) {
        let network = subnet.network
        guard subnet.contains(address) else {
            add(field, address, "is outside \(subnetRole) \(network)")
            return
        }
        guard subnet.length < 31 else { return }
        let hosts = "\(IPv4.Address(network.address.value + 1)) to \(IPv4.Address(subnet.broadcast.value - 1))"
        if address == network.address {
            add(field, address, "is the network address of \(subnetRole) \(network) (expected \(hosts))")
        } else if address == subnet.broadcast {
            add(field, address, "is the broadcast address of \(subnetRole) \(network) (expected \(hosts))")
        }
    }
}

// MARK: Lists and keys

extension ValidationProblems {
    /// Flags each repeat of an earlier element, by index.
    mutating func checkNoDuplicates<Element: Hashable & CustomStringConvertible>(
        _ elements: [Element], field: String, suffix: String = "", what: String
    ) {
        var seen = Set<Element>()
        for (index, element) in elements.enumerated() where !seen.insert(element).inserted {
            add("\(field)[\(index)]\(suffix)", element, "repeats an earlier \(what) (expected each \(what) once)")
        }
    }

    /// Tunnel keys travel as 24-bit Geneve VNIs / VXLAN VNIs; 0 means "not yet allocated".
    mutating func checkTunnelKey(_ key: UInt32) {
        if key > TunnelKey.maximum {
            add("tunnelKey", key, "is out of range (expected 1 to \(TunnelKey.maximum), or 0 to have one allocated)")
        }
    }
}

/// The range of keys the repository allocates for bridges and ports.
public enum TunnelKey {
    public static let maximum: UInt32 = 0xFF_FFFF
    public static let allocatable: ClosedRange<UInt32> = 1...maximum
}

// MARK: Text rules

func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.properties.generalCategory == .control
}

/// Linux `dev_valid_name`: 1...15 bytes (IFNAMSIZ - 1), no '/', ':' or
/// whitespace, not "." or ".."; control characters are also refused.
/// Returns the problem, or nil when valid.
func interfaceNameProblem(_ name: String) -> String? {
    let accepted = "(expected a Linux interface name: 1 to 15 bytes, no '/', ':' or whitespace, not '.' or '..')"
    let bytes = name.utf8.count
    if bytes == 0 { return "must not be empty \(accepted)" }
    if bytes > 15 { return "is \(bytes) bytes long \(accepted)" }
    if name == "." || name == ".." { return "is a directory name \(accepted)" }
    if name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || isControl($0) }) {
        return "contains '/', ':', whitespace or a control character \(accepted)"
    }
    return nil
}

/// Whether `text` is one DNS label (RFC 1123), as `dnsLabelProblem` checks it.
public func isDNSLabel(_ text: String) -> Bool { dnsLabelProblem(text) == nil }

/// One DNS label (RFC 1123): 1...63 letters, digits and hyphens, not
/// starting or ending with a hyphen. Returns the problem, or nil when valid.
func dnsLabelProblem(_ label: String) -> String? {
    let accepted = "(expected a DNS label: 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen)"
    let bytes = Array(label.utf8)
    if bytes.isEmpty { return "must not be empty \(accepted)" }
    if bytes.count > 63 { return "is \(bytes.count) bytes long \(accepted)" }
    let allowed = bytes.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
    if !allowed { return "contains a character other than a letter, digit or hyphen \(accepted)" }
    if bytes.first == UInt8(ascii: "-") || bytes.last == UInt8(ascii: "-") {
        return "starts or ends with a hyphen \(accepted)"
    }
    return nil
}
