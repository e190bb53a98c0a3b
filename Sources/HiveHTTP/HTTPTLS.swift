// TLS for `HTTPClient`: the files an operator gives (a CA to trust, an
// optional client certificate and key) turned into one `NIOSSLContext`, a
// wait for each connection's handshake, and TLS failures in words.
//
// A bad file fails `makeContext()` at once, naming the file (never its
// contents), so a misconfiguration shows at start-up, not at the first request.

import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// What a client trusts and presents over TLS.
package struct HTTPTLSOptions: Sendable, Hashable {
    /// PEM CA certificate(s) the server's certificate must chain to; nil: the system's roots.
    package var caFile: String?
    /// PEM client certificate (chain) presented to a server that asks for one; needs `keyFile`.
    package var certificateFile: String?
    /// PEM private key of `certificateFile`.
    package var keyFile: String?

    package init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The context for every TLS connection of a client; throws `HTTPTLSError` naming the file at fault.
    package func makeContext() throws(HTTPTLSError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw HTTPTLSError("cannot read the CA file \(caFile) as PEM certificates (\(error))")
            }
        }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            } catch {
                throw HTTPTLSError("cannot read the client certificate \(certificateFile) as PEM (\(error))")
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw HTTPTLSError("cannot read the client key \(keyFile) as a PEM private key")
            }
        case (.some, nil):
            throw HTTPTLSError("a client certificate needs its key file too")
        case (nil, .some):
            throw HTTPTLSError("a client key needs its certificate file too")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw HTTPTLSError("cannot set up TLS with these files (\(error)); does the key match the certificate?")
        }
    }

    /// A connection failure in words; TLS failures say what to check.
    package static func describe(_ error: any Error) -> String {
        classify(error).text
    }

    /// True when the server refused the TLS session itself (a certificate it
    /// does not accept, or none): it read no request on that connection.
    package static func isRefusal(_ error: any Error) -> Bool {
        classify(error).refusal
    }

    private static func classify(_ error: any Error) -> (text: String, refusal: Bool) {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return ("TLS: the server's certificate does not name this host (\(extra))", false)
        }
        let text = "\(error)"
        guard error is NIOSSLError || error is BoringSSLError else { return (text, false) }
        // BoringSSL's reason, e.g. "CERTIFICATE_VERIFY_FAILED", without its source path.
        let parts = text.split(separator: ":")
        let reason = parts.firstIndex(of: "OPENSSL_internal").flatMap { index in
            index + 1 < parts.count ? String(parts[index + 1].prefix { $0.isLetter || $0.isNumber || $0 == "_" }) : nil
        } ?? text
        if reason.contains("CERTIFICATE_VERIFY_FAILED") {
            return ("TLS: the server's certificate is not trusted: it does not chain to a trusted CA (\(reason))", false)
        }
        // Alerts the server sends about this client's certificate.
        if reason.contains("ALERT_CERTIFICATE_REQUIRED") || reason.contains("ALERT_BAD_CERTIFICATE")
            || reason.contains("ALERT_UNKNOWN_CA") || reason.contains("ALERT_HANDSHAKE_FAILURE") {
            return ("TLS: the server refused this client's certificate, or its absence (\(reason)); "
                + "give a client certificate and key signed by a CA the server trusts", true)
        }
        if reason.contains("WRONG_VERSION_NUMBER") {
            return ("TLS: the server does not speak TLS (\(reason)); is it an http:// endpoint?", false)
        }
        return ("TLS: \(reason)", false)
    }
}

/// A TLS file or setting that cannot be used.
package struct HTTPTLSError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

extension HTTPClient {
    /// A client whose `https://` connections trust and present what `tls` names.
    package convenience init(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, connectTimeout: TimeAmount,
        maxIdlePerEndpoint: Int, tls: HTTPTLSOptions
    ) throws(HTTPTLSError) {
        self.init(group: group, connectTimeout: connectTimeout, maxIdlePerEndpoint: maxIdlePerEndpoint, tls: try tls.makeContext())
    }
}

extension HTTPEndpoint {
    /// True when the host is an IPv4 or IPv6 literal (checked against IP SANs, not sent as SNI).
    var isIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }
}

/// Lets `connect` wait for a connection's TLS handshake: the handler it makes
/// (placed after the `NIOSSLClientHandler`) completes on the handshake's end,
/// and fails on the handler's error or the channel closing first.
final class TLSHandshakeWaiter: Sendable {
    private let result = Mutex<EventLoopFuture<Void>?>(nil)

    func handler(on eventLoop: any EventLoop) -> some ChannelInboundHandler {
        let promise = eventLoop.makePromise(of: Void.self)
        result.withLock { $0 = promise.futureResult }
        return Handler(promise: promise)
    }

    /// Returns once the handshake is done; throws its error, or closes the channel after `timeout`.
    func completed(within timeout: TimeAmount, on channel: any Channel) async throws {
        guard let future = result.withLock({ $0 }) else { return }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        try await future.get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = NIOAny
        let promise: EventLoopPromise<Void>

        init(promise: EventLoopPromise<Void>) { self.promise = promise }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event { promise.succeed() }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(HTTPTLSError("the connection closed during the TLS handshake"))
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            promise.fail(HTTPTLSError("the connection closed during the TLS handshake"))
        }
    }
}
