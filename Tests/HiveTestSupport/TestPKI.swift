import Foundation
import HiveHTTP

/// A throwaway certificate authority and the certificates tests need, made
/// with `openssl` (P-256 keys, valid two days) in a directory the caller owns
/// and removes.
///
/// - `server`: for 127.0.0.1 and localhost (IP and DNS SANs), usable as a
///   server and as a client: etcd members present it to their peers, and its
///   gateway to the member's own gRPC server.
/// - `client`: a client certificate only (what `hive` presents to etcd).
public struct TestPKI: Sendable {
    public struct Pair: Sendable {
        public var certificate: String
        public var key: String
    }

    public static let openssl = "/usr/bin/openssl"

    public var directory: String
    public var caCertificate: String
    public var server: Pair
    public var client: Pair

    /// What a client trusts (this CA) and presents (`client`).
    package var clientOptions: HTTPTLSOptions {
        HTTPTLSOptions(caFile: caCertificate, certificateFile: client.certificate, keyFile: client.key)
    }

    /// Makes a CA and its server and client certificates in `directory` (created if missing).
    public static func make(in directory: String) throws -> TestPKI {
        guard FileManager.default.isExecutableFile(atPath: openssl) else {
            throw EtcdClusterError("\(openssl) is missing: run scripts/install-test-deps.sh (it installs openssl)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let caConfig = directory + "/ca.cnf"
        try """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = hive test CA
            [v3_ca]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash
            """.write(toFile: caConfig, atomically: true, encoding: .utf8)
        let ca = Pair(certificate: directory + "/ca.pem", key: directory + "/ca-key.pem")
        try run([
            "req", "-x509", "-new", "-config", caConfig, "-extensions", "v3_ca",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", ca.key, "-out", ca.certificate, "-days", "2",
        ])
        let server = try issue("server", by: ca, in: directory, extensions: """
            subjectAltName = IP:127.0.0.1,DNS:localhost
            extendedKeyUsage = serverAuth,clientAuth
            """)
        let client = try issue("client", by: ca, in: directory, extensions: "extendedKeyUsage = clientAuth\n")
        return TestPKI(directory: directory, caCertificate: ca.certificate, server: server, client: client)
    }

    /// A key and a certificate for `name`, signed by `ca`, with these extensions (openssl's syntax).
    private static func issue(_ name: String, by ca: Pair, in directory: String, extensions: String) throws -> Pair {
        let pair = Pair(certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name)-key.pem")
        let request = "\(directory)/\(name).csr"
        let extensionFile = "\(directory)/\(name).ext"
        try (extensions + """

            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature,keyEncipherment
            authorityKeyIdentifier = keyid
            """).write(toFile: extensionFile, atomically: true, encoding: .utf8)
        try run([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", pair.key, "-out", request, "-subj", "/CN=hive test \(name)",
        ])
        try run([
            "x509", "-req", "-in", request, "-CA", ca.certificate, "-CAkey", ca.key,
            "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-days", "2",
            "-extfile", extensionFile, "-out", pair.certificate,
        ])
        return pair
    }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw EtcdClusterError(
                "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
