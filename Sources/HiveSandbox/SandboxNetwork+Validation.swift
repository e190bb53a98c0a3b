import Foundation

extension SandboxNetwork {
    /// Checks the description without running anything: names, addresses,
    /// MACs, MTUs and references between hosts and VMs.
    ///
    /// - Throws: `SandboxError.invalidConfiguration` with every problem found.
    public func validate() throws {
        let problems = validationProblems()
        if !problems.isEmpty { throw SandboxError.invalidConfiguration(problems) }
    }

    /// Every problem with the description, in field order; empty when valid.
    public func validationProblems() -> [SandboxError.Problem] {
        var problems: [SandboxError.Problem] = []
        func report(_ field: String, _ value: String, _ problem: String) {
            problems.append(SandboxError.Problem(field: field, value: value, problem: problem))
        }

        if let problem = Self.nameProblem(prefix) {
            report("prefix", prefix, problem)
        } else if prefix.count > Self.maximumPrefixLength {
            report("prefix", prefix, "is \(prefix.count) characters; at most \(Self.maximumPrefixLength) are allowed so interface names fit Linux's 15")
        }
        if hosts.count > 9999 {
            report("hosts", "\(hosts.count) hosts", "is too many; at most 9999 are allowed")
        }

        var namespaces: Set<String> = [underlayNamespace]
        func checkNamespace(_ field: String, _ name: String) {
            if let problem = Self.nameProblem(name) {
                report(field, name, problem)
            } else if !name.hasPrefix(prefix) {
                report(field, name, "does not start with the prefix '\(prefix)', so teardown could not find it")
            } else if !namespaces.insert(name).inserted {
                report(field, name, "is used twice; each host, VM and the upstream needs its own namespace, and '\(underlayNamespace)' is the underlay's")
            }
        }

        var underlayAddresses: Set<UInt32> = []
        for (index, host) in hosts.enumerated() {
            checkNamespace("hosts[\(index)].name", host.name)
            if let cidr = IPv4CIDR(parsing: host.underlayAddress) {
                if !underlayAddresses.insert(cidr.address).inserted {
                    report("hosts[\(index)].underlayAddress", host.underlayAddress, "is already another host's")
                }
            } else {
                report("hosts[\(index)].underlayAddress", host.underlayAddress, IPv4CIDR.expectation)
            }
        }

        let hostNames = Set(hosts.map(\.name))
        var hostInterfaces: Set<[String]> = []
        for (index, vm) in vms.enumerated() {
            let field = "vms[\(index)]"
            checkNamespace("\(field).name", vm.name)
            if !hostNames.contains(vm.host) {
                report("\(field).host", vm.host, "is not the name of a host in this network")
            }
            if let problem = Self.interfaceProblem(vm.hostInterface) {
                report("\(field).hostInterface", vm.hostInterface, problem)
            } else if !hostInterfaces.insert([vm.host, vm.hostInterface]).inserted {
                report("\(field).hostInterface", vm.hostInterface, "is already another VM's on host '\(vm.host)'")
            }
            if let problem = Self.macProblem(vm.mac) {
                report("\(field).mac", vm.mac, problem)
            }
            let cidr = vm.address.flatMap(IPv4CIDR.init(parsing:))
            if let address = vm.address, cidr == nil {
                report("\(field).address", address, IPv4CIDR.expectation)
            }
            if let gateway = vm.gateway, vm.address != nil {
                if let next = IPv4CIDR.parseAddress(gateway) {
                    if let cidr, !cidr.contains(next) || next == cidr.address {
                        report("\(field).gateway", gateway, "is not another address in the VM's subnet \(cidr.subnetDescription)")
                    }
                } else {
                    report("\(field).gateway", gateway, "is not an IPv4 address, e.g. 10.0.1.1")
                }
            }
            if !(68...65535).contains(vm.mtu) {
                report("\(field).mtu", "\(vm.mtu)", "is outside 68...65535, the MTUs a veth accepts")
            }
        }
        if let upstream {
            checkNamespace("upstream.name", upstream.name)
            upstreamProblems(upstream, hostInterfaces: &hostInterfaces, report: report)
        }
        return problems
    }

    /// Letters, digits, "-" and "_" only: safe as a file name in /run/netns,
    /// as an interface name and on a command line.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.count > 64 { return "is longer than 64 characters" }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_")
        }
        return allowed ? nil : "has characters other than ASCII letters, digits, '-' and '_'"
    }

    static func interfaceProblem(_ name: String) -> String? {
        if let problem = nameProblem(name) { return problem }
        if name.count > 15 { return "is \(name.count) characters; Linux interface names have at most 15" }
        if name == "lo" || name == underlayInterface { return "is taken in every host namespace" }
        return nil
    }

    /// Six colon-separated hex octets, unicast and not all zero: the
    /// kernel refuses anything else on a veth.
    static func macProblem(_ mac: String) -> String? {
        let octets = mac.split(separator: ":", omittingEmptySubsequences: false)
        let values = octets.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        guard octets.count == 6, values.count == 6 else {
            return "is not a MAC address of six hex octets, e.g. 02:00:00:00:01:0a"
        }
        if values[0] & 1 == 1 { return "is a multicast MAC; a VM's must be unicast (first octet even)" }
        if values.allSatisfy({ $0 == 0 }) { return "is the all-zero MAC" }
        return nil
    }
}

/// An IPv4 address with a prefix length, "10.0.1.10/24".
struct IPv4CIDR: Hashable {
    static let expectation = "is not an IPv4 address with a prefix length, e.g. 10.0.1.10/24"

    var address: UInt32
    var prefixLength: Int

    init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = Self.parseAddress(String(parts[0])),
            parts[1].allSatisfy(\.isASCII), let length = Int(parts[1]), (1...32).contains(length)
        else { return nil }
        self.address = address
        self.prefixLength = length
    }

    /// Dotted-quad only: `inet_aton` would also take "10.1" or "0x0a.0.0.1".
    static func parseAddress(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                let number = UInt32(octet), number <= 255
            else { return nil }
            value = value << 8 | number
        }
        return value
    }

    var mask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << (32 - prefixLength) }

    func contains(_ other: UInt32) -> Bool { other & mask == address & mask }

    /// "10.0.1.0/24".
    var subnetDescription: String {
        let network = address & mask
        let octets = [24, 16, 8, 0].map { String((network >> UInt32($0)) & 0xFF) }
        return octets.joined(separator: ".") + "/\(prefixLength)"
    }
}
