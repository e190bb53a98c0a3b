import Foundation

/// Why the sandbox could not be built before any command ran.
public enum SandboxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The process is not root, so it cannot create namespaces.
    case notRoot(effectiveUserID: UInt32)
    /// A needed executable is not installed.
    case missingTool(name: String, debianPackage: String)
    /// The network description is wrong; every problem found, in field order.
    case invalidConfiguration([Problem])

    /// One wrong field: what was given and what would be accepted.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// Path of the field, e.g. "prefix", "vms[1].address".
        public var field: String
        /// The offending value.
        public var value: String
        /// What is wrong, phrased to follow the value ("is not ...").
        public var problem: String

        public init(field: String, value: String, problem: String) {
            self.field = field
            self.value = value
            self.problem = problem
        }

        /// "vms[0].address: '10.0.1.300/24' is not an IPv4 address with a prefix length, e.g. 10.0.1.10/24".
        public var description: String { "\(field): '\(value)' \(problem)" }
    }

    public var description: String {
        switch self {
        case .notRoot(let uid):
            return "hive sandbox must run as root (it creates network namespaces and veth pairs); "
                + "the effective user id is \(uid), run it with sudo"
        case .missingTool(let name, let package):
            return "hive sandbox needs `\(name)`, which was not found in \(CommandRunner.searchedDescription); "
                + "install it with `apt-get install \(package)`"
        case .invalidConfiguration(let problems):
            return "invalid sandbox network: " + problems.map(\.description).joined(separator: "; ")
        }
    }
}

/// Whether this process may build a sandbox network.
public enum SandboxPrivileges {
    /// True when the effective user is root.
    public static var isRoot: Bool { geteuid() == 0 }

    /// Throws `SandboxError.notRoot` unless the process runs as root:
    /// creating namespaces and moving interfaces between them needs
    /// CAP_SYS_ADMIN and CAP_NET_ADMIN, which in practice means root.
    public static func check() throws {
        guard isRoot else { throw SandboxError.notRoot(effectiveUserID: UInt32(geteuid())) }
    }
}

/// The executables the sandbox runs, and where Debian ships them.
public enum SandboxTools {
    /// Executable name to Debian package, for install hints.
    public static let debianPackages: [String: String] = [
        "ip": "iproute2",
        "ethtool": "ethtool",
        "ping": "iputils-ping",
        "dhclient": "isc-dhcp-client",
        "udhcpc": "udhcpc",
        "tshark": "tshark",
        "sysctl": "procps",
        "curl": "curl",
    ]

    /// The tools `SandboxNetwork.create()` needs (with an upstream, also
    /// `sysctl`: see `SandboxNetwork.requiredTools`).
    public static let required = ["ip"]

    /// Throws `SandboxError.missingTool` for the first of `tools` that is not
    /// installed, naming the Debian package that provides it.
    public static func check(_ tools: [String] = required) throws {
        for tool in tools where CommandRunner.locate(tool) == nil {
            throw SandboxError.missingTool(name: tool, debianPackage: debianPackages[tool] ?? tool)
        }
    }
}
