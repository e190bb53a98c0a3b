import Foundation

// The sandbox network: a small Linux network of namespaces in which Hive's
// datapath runs against real kernel stacks, without touching the machine's
// own network.
//
//   underlay namespace (P+"underlay"):  bridge P+"ul", ports P+"u1", P+"u2", ...
//          |  veth                             |  veth
//   host namespace (e.g. P+"h1"): ul0 100.64.0.1/24    host P+"h2": ul0 100.64.0.2/24
//          |  veth (host end, e.g. P+"vm1", no address)
//   VM namespace (e.g. P+"vm1"): eth0 with the VM's MAC, address, MTU, default route
//
// and, optionally, an upstream namespace (e.g. P+"internet") linked to
// gateway hosts' `ext0` by veths: the outside world of a provider router
// (SandboxNetwork+Upstream.swift).
//
// Invariants:
// - Every namespace is named with the prefix, and every interface is created
//   inside a namespace, never in the root one. Deleting the namespaces
//   therefore removes everything; `destroyAll(prefix:)` finds it all even
//   after a crash.
// - `create()` either builds the whole network or, on failure, removes the
//   namespaces it made (and only those) before throwing.
//
// Threads: every call blocks on `ip` and may be made from any thread. Two
// networks with different prefixes may be built concurrently; one network
// must not be created and destroyed at the same time.

/// A sandbox network: an underlay bridge, hosts attached to it, and VMs
/// attached to hosts. A plain description; `create()` builds it.
public struct SandboxNetwork: Sendable {
    /// A hypervisor host: a namespace whose `ul0` is on the underlay bridge.
    public struct Host: Sendable, Hashable {
        /// The namespace name; starts with the network's prefix, e.g. "hive-h1".
        public var name: String
        /// The address of `ul0` with its prefix length, e.g. "100.64.0.1/24".
        public var underlayAddress: String

        public init(name: String, underlayAddress: String) {
            self.name = name
            self.underlayAddress = underlayAddress
        }
    }

    /// A VM: a namespace whose `eth0` is a veth whose other end is in its host.
    public struct VM: Sendable, Hashable {
        /// The namespace name; starts with the network's prefix, e.g. "hive-vm1".
        public var name: String
        /// The `name` of the host the VM runs on.
        public var host: String
        /// The name of the veth end in the host namespace (at most 15
        /// characters), where the datapath reads and writes the VM's frames.
        public var hostInterface: String
        /// The MAC of `eth0`, e.g. "02:00:00:00:01:0a"; unicast.
        public var mac: String
        /// The address of `eth0` with its prefix length, e.g. "10.0.1.10/24";
        /// nil leaves `eth0` without one, for a DHCP client to configure.
        public var address: String?
        /// The default route's next hop, inside `address`'s subnet; nil for no default route.
        public var gateway: String?
        /// The MTU of `eth0` and of the host end. The default 1400 leaves room
        /// for tunnel headers inside the underlay's 1500.
        public var mtu: Int

        public init(
            name: String, host: String, hostInterface: String, mac: String, address: String?, gateway: String? = nil,
            mtu: Int = 1400
        ) {
            self.name = name
            self.host = host
            self.hostInterface = hostInterface
            self.mac = mac
            self.address = address
            self.gateway = gateway
            self.mtu = mtu
        }
    }

    /// Starts the name of everything created; at most
    /// `maximumPrefixLength` characters so interface names fit in 15.
    /// Prefer one ending in "-", so no prefix is the start of another's names.
    public var prefix: String
    public var hosts: [Host]
    public var vms: [VM]
    /// The outside world; nil for none.
    public var upstream: Upstream?

    /// The longest prefix: P+"u"+a host number must fit Linux's 15-character
    /// interface names with room for 9999 hosts.
    public static let maximumPrefixLength = 10
    /// The MTU of every host's `ul0`.
    public static let underlayMTU = 1500
    /// The name of each host's underlay interface.
    public static let underlayInterface = "ul0"

    public init(prefix: String = "hive-", hosts: [Host], vms: [VM] = [], upstream: Upstream? = nil) {
        self.prefix = prefix
        self.hosts = hosts
        self.vms = vms
        self.upstream = upstream
    }

    /// The namespace holding the underlay bridge.
    public var underlayNamespace: String { prefix + "underlay" }
    /// The bridge in the underlay namespace.
    public var underlayBridge: String { prefix + "ul" }

    /// The bridge port, in the underlay namespace, of the host at `index` in `hosts`.
    public func underlayPort(forHostAt index: Int) -> String { prefix + "u\(index + 1)" }

    /// Every namespace of this network, in creation order: underlay, hosts,
    /// upstream, VMs.
    public var namespaces: [String] {
        [underlayNamespace] + hosts.map(\.name) + (upstream.map { [$0.name] } ?? []) + vms.map(\.name)
    }

    /// The tools `create()` runs: `SandboxTools.required`, and `sysctl` for an upstream.
    public var requiredTools: [String] { SandboxTools.required + (upstream == nil ? [] : ["sysctl"]) }

    /// Builds the network: the underlay namespace and bridge, each host with
    /// `ul0` on the bridge, the upstream namespace with its uplinks, sysctls,
    /// server address and multipath routes, each VM with `eth0` and its host
    /// end. Every veth keeps the kernel's default offloads: a VM hands its
    /// host TCP super-frames and partial checksums, as a real one does, and
    /// the datapath takes them (see `HiveDatapath/Offload.swift`).
    ///
    /// - Throws: `SandboxError.invalidConfiguration` (before running
    ///   anything), `SandboxError.notRoot` or `.missingTool`, or the
    ///   `CommandFailure` of the first command that failed, e.g. when a
    ///   namespace of that name already exists. On any failure the
    ///   namespaces this call made are removed first; others are left alone.
    public func create() throws {
        try validate()
        try SandboxPrivileges.check()
        try SandboxTools.check(requiredTools)
        var created: [String] = []
        do {
            try createUnderlay(recordingIn: &created)
            for index in hosts.indices {
                try createHost(at: index, recordingIn: &created)
            }
            if let upstream {
                try createUpstream(upstream, recordingIn: &created)
            }
            for vm in vms {
                try createVM(vm, recordingIn: &created)
            }
        } catch {
            for name in created.reversed() {
                NetworkNamespace.delete(name)
            }
            throw error
        }
    }

    /// Removes every namespace of this network, VMs first, killing processes
    /// left inside them; their interfaces go with them. Never throws; names
    /// already gone are skipped, so calling it again does nothing.
    public func destroy() {
        for name in namespaces.reversed() {
            NetworkNamespace.delete(name)
        }
    }

    /// Removes every namespace whose name starts with `prefix`, also those
    /// left by a crashed run, killing processes inside them. Namespaces not
    /// starting with `prefix` are never touched; an empty prefix does nothing.
    public static func destroyAll(prefix: String) {
        guard !prefix.isEmpty else { return }
        for name in NetworkNamespace.list() where name.hasPrefix(prefix) {
            NetworkNamespace.delete(name)
        }
    }

    private func createUnderlay(recordingIn created: inout [String]) throws {
        let namespace = underlayNamespace
        try NetworkNamespace.add(namespace)
        created.append(namespace)
        try ip(namespace, "link", "add", "name", underlayBridge, "type", "bridge")
        try ip(namespace, "link", "set", "dev", underlayBridge, "up")
    }

    private func createHost(at index: Int, recordingIn created: inout [String]) throws {
        let host = hosts[index]
        let port = underlayPort(forHostAt: index)
        let uplink = Self.underlayInterface
        try NetworkNamespace.add(host.name)
        created.append(host.name)
        try ip(host.name, "link", "set", "dev", "lo", "up")
        // Made inside the namespaces directly, so nothing ever sits in the root one.
        try ip(underlayNamespace, "link", "add", "name", port, "type", "veth", "peer", "name", uplink, "netns", host.name)
        try ip(underlayNamespace, "link", "set", "dev", port, "master", underlayBridge)
        try ip(underlayNamespace, "link", "set", "dev", port, "up")
        try ip(host.name, "link", "set", "dev", uplink, "mtu", "\(Self.underlayMTU)")
        try ip(host.name, "address", "add", host.underlayAddress, "dev", uplink)
        try ip(host.name, "link", "set", "dev", uplink, "up")
    }

    private func createVM(_ vm: VM, recordingIn created: inout [String]) throws {
        try NetworkNamespace.add(vm.name)
        created.append(vm.name)
        try ip(vm.name, "link", "set", "dev", "lo", "up")
        try ip(vm.name, "link", "add", "name", "eth0", "type", "veth", "peer", "name", vm.hostInterface, "netns", vm.host)
        try ip(vm.name, "link", "set", "dev", "eth0", "address", vm.mac, "mtu", "\(vm.mtu)")
        if let address = vm.address { try ip(vm.name, "address", "add", address, "dev", "eth0") }
        try ip(vm.name, "link", "set", "dev", "eth0", "up")
        if vm.address != nil, let gateway = vm.gateway {
            try ip(vm.name, "route", "add", "default", "via", gateway, "dev", "eth0")
        }
        // No IPv6 link-local either: the host end carries no address at all.
        try ip(vm.host, "link", "set", "dev", vm.hostInterface, "addrgenmode", "none")
        try ip(vm.host, "link", "set", "dev", vm.hostInterface, "mtu", "\(vm.mtu)", "up")
    }

    /// `ip -n NAMESPACE ARGUMENTS...`. Interface names always follow `name`
    /// or `dev`: bare, `ip` would read a name like "a" as the keyword "address".
    func ip(_ namespace: String, _ arguments: String...) throws {
        try RootNamespace.run(["ip", "-n", namespace] + arguments)
    }
}
