// Leases over the gateway: grant, one keep-alive, revoke.
//
// `/v3/lease/keepalive` is a bidirectional gRPC stream behind the gateway:
// one request body gets one `{"result": {...}}` message, then the response
// ends. For an unknown or expired lease etcd does not fail: it answers with
// TTL 0, which the gateway leaves out. Either means the lease is gone.

extension EtcdStore {
    public func grantLease(ttl: Int64) async throws -> Lease {
        let response = try await call(
            "/v3/lease/grant", EtcdJSON.LeaseGrantRequest(ttl: EtcdJSON.Int64Value(ttl)),
            as: EtcdJSON.LeaseGrantResponse.self, retry: .always)
        if let error = response.error, !error.isEmpty {
            throw StoreError.rejected("etcd refused a lease of \(ttl) s: \(error)")
        }
        let id = response.id.orZero
        guard id != 0 else {
            throw StoreError.rejected("etcd granted a lease of \(ttl) s without an ID")
        }
        return Lease(id: id, ttl: response.ttl.orZero)
    }

    @discardableResult
    public func keepAlive(_ lease: LeaseID) async throws -> Int64 {
        let reply = try await send(
            "/v3/lease/keepalive", body: try EtcdJSON.encode(EtcdJSON.LeaseIDRequest(id: EtcdJSON.Int64Value(lease))),
            retry: .always)
        guard reply.status == .ok else {
            throw Self.storeError(for: reply, path: "/v3/lease/keepalive", lease: lease, revision: 0)
        }
        // A stream: one JSON message per line; the first one answers.
        let firstLine = reply.body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).first ?? []
        let message = try EtcdJSON.decode(
            EtcdJSON.StreamMessage<EtcdJSON.LeaseKeepAliveResponse>.self, from: Array(firstLine),
            what: "/v3/lease/keepalive")
        if let error = message.error {
            if error.message.contains("requested lease not found") { throw StoreError.leaseNotFound(lease) }
            throw StoreError.rejected("etcd refused a keep-alive of lease \(lease): \(error.message)")
        }
        let ttl = message.result?.ttl.orZero ?? 0
        guard ttl > 0 else { throw StoreError.leaseNotFound(lease) }
        return ttl
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        let reply = try await send(
            "/v3/lease/revoke", body: try EtcdJSON.encode(EtcdJSON.LeaseIDRequest(id: EtcdJSON.Int64Value(lease))),
            retry: .always)
        guard reply.status == .ok else {
            let error = Self.storeError(for: reply, path: "/v3/lease/revoke", lease: lease, revision: 0)
            // After an attempt that may have applied, "not found" means that attempt revoked it.
            if case .leaseNotFound = error, reply.followsUncertainAttempt { return }
            throw error
        }
    }
}
