import HummingbirdTLS
import NIOSSL

/// The API's HTTPS certificate and key, as PEM files (`hive api --tls-cert-file --tls-key-file`).
public struct APITLSFiles: Sendable, Hashable {
    /// The server certificate, then any intermediates.
    public var certificateFile: String
    public var keyFile: String

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// TLS 1.2 or later with this certificate; throws naming the file that
    /// does not read (never its contents).
    public func serverConfiguration() throws(APITLSError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw APITLSError("cannot read the TLS certificate \(certificateFile) as PEM (\(error))")
        }
        guard !chain.isEmpty else { throw APITLSError("the TLS certificate file \(certificateFile) holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw APITLSError("cannot read the TLS key \(keyFile) as a PEM private key")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            // Fails here, at start-up, when the key does not match the certificate.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw APITLSError("the TLS key \(keyFile) does not fit the certificate \(certificateFile) (\(error))")
        }
        return configuration
    }
}

/// A TLS file of the API that cannot be used.
public struct APITLSError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
