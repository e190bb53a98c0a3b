import Foundation
import HiveClient
import HiveModel
import HiveStore
import HiveTestSupport
import Testing

/// TLS end to end: an etcd cluster set up as etcd's security guide does
/// (https, client certificates required), `hive api` serving HTTPS on it, and
/// the client trusting the API's CA through `caFile`.
@Suite struct TLSTests {
    static let adminToken = "tls-admin-token-0123456789"

    @Test(.timeLimit(.minutes(3))) func apiServesHTTPSOnATLSEtcdCluster() async throws {
        try await withEtcdCluster(tls: true) { cluster in
            let pki = try #require(cluster.pki)

            // The store: refused by etcd without a client certificate; with one, reads, writes and watches work.
            let anonymous = EtcdStore(
                endpoints: cluster.endpoints, options: .init(retryWindow: .seconds(2), trustedCAFile: pki.caCertificate))
            let refusal = await #expect(throws: StoreError.self) { try await anonymous.get("k") }
            // A refused TLS session read no request: a write is unavailable, not of unknown outcome.
            let write = await #expect(throws: StoreError.self) {
                try await anonymous.transaction(Transaction(success: [.put(key: "k", value: [])]))
            }
            await anonymous.close()
            if case .unavailable? = write {} else { Issue.record("expected unavailable, got \(String(describing: write))") }
            #expect("\(refusal.map(String.init(describing:)) ?? "")".contains("refused this client's certificate"),
                    "\(String(describing: refusal))")
            try await expectStoreWorks(on: cluster, pki: pki)

            // The API over HTTPS, on that store.
            let server = try APIProcess(arguments: [
                "--listen", "127.0.0.1:0", "--admin-token", Self.adminToken,
                "--etcd", cluster.endpoints.joined(separator: ","), "--etcd-ca-file", pki.caCertificate,
                "--etcd-cert-file", pki.client.certificate, "--etcd-key-file", pki.client.key,
                "--tls-cert-file", pki.server.certificate, "--tls-key-file", pki.server.key,
            ])
            let url = try await server.waitForURL()
            #expect(url.scheme == "https", "\(server.standardOutput)")

            let client = HiveClient(endpoint: url, token: Self.adminToken, caFile: pki.caCertificate)
            let created = try await client.create(Bridge(name: "secure"))
            #expect(try await client.get(created.object.id).object.name == "secure")
            #expect(await client.isHealthy())

            // Plain HTTP to the HTTPS port gets no HTTP answer.
            var plainURL = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false))
            plainURL.scheme = "http"
            let plain = HiveClient(endpoint: try #require(plainURL.url), token: Self.adminToken)
            let plainError = await #expect(throws: HiveClientError.self) { try await plain.create(Bridge(name: "clear")) }
            #expect(plainError?.status == 0, "no HTTP status: \(String(describing: plainError))")

            // A client that does not trust the API's CA (the system's roots, or another CA) is refused, and says why.
            let other = try TestPKI.make(in: cluster.directory + "/other-pki")
            for caFile in [nil, other.caCertificate] {
                let untrusting = HiveClient(endpoint: url, token: Self.adminToken, caFile: caFile)
                let error = await #expect(throws: HiveClientError.self) { try await untrusting.get(created.object.id) }
                #expect("\(String(describing: error))".contains("certificate is not trusted"), "\(String(describing: error))")
            }

            // The CLI: --ca-file, else HIVE_CA_FILE; a CA that did not sign the API's certificate is refused.
            let hive = try hiveExecutable().path
            let list = [hive, "bridge", "list", "--endpoint", url.absoluteString, "--token", Self.adminToken]
            let trusted = try runCommand(list + ["--ca-file", pki.caCertificate])
            #expect(trusted.status == 0 && trusted.output.contains("secure"), "\(trusted.output)")
            let fromEnvironment = try runCommand(list, environment: ["HIVE_CA_FILE": pki.caCertificate])
            #expect(fromEnvironment.status == 0 && fromEnvironment.output.contains("secure"), "\(fromEnvironment.output)")
            let wrongCA = try runCommand(list + ["--ca-file", other.caCertificate])
            #expect(wrongCA.status != 0 && wrongCA.output.contains("certificate is not trusted"), "\(wrongCA.output)")

            kill(server.process.processIdentifier, SIGTERM)
            #expect(await server.waitForExit() == 0, "\(server.standardError)")
        }
    }

    /// A store with the client certificate reads and writes, and a watch over
    /// TLS delivers writes, also across the death of the member it follows.
    private func expectStoreWorks(on cluster: EtcdCluster, pki: TestPKI) async throws {
        let store = EtcdStore(endpoints: cluster.endpoints, options: .init(
            trustedCAFile: pki.caCertificate, clientCertificateFile: pki.client.certificate, clientKeyFile: pki.client.key))
        do {
            let revision = try await store.put("tls/a", value: Array("v".utf8), lease: 0)
            var watch = await store.watch(.prefix("tls/"), fromRevision: revision).makeAsyncIterator()
            #expect(try await nextKeys(&watch) == ["tls/a"])
            // Requests and the watch went to the first member: kill it.
            cluster.kill(member: 0)
            _ = try await store.put("tls/b", value: Array("w".utf8), lease: 0)
            #expect(try await nextKeys(&watch) == ["tls/b"])
            #expect(try await store.get("tls/b")?.value == Array("w".utf8))
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    /// The keys of the next batch that has events.
    private func nextKeys(_ watch: inout WatchStream.AsyncIterator) async throws -> [String]? {
        while let batch = try await watch.next() {
            if !batch.events.isEmpty { return batch.events.map(\.keyValue.key) }
        }
        return nil
    }
}
