import Foundation
import HiveModel
import HiveSimulation
import HiveStore
import Hummingbird

import struct HiveModel.Port

// Traces: `POST /v1/traces` simulates a described packet on the NSDB's live
// state; `/v1/trace-requests` arms live traces of real packets. A live
// request lives in the NSDB under a lease of its own that every read of its
// results keeps alive: when its client stops reading (or is killed), the
// lease lapses within `leaseTTL` and the request, with what the agents
// traced, is gone. Agents watch the requests and write traced packets under
// the same lease.

/// `POST /v1/trace-requests`: what to trace.
struct LiveTraceBody: Decodable {
    var portId: PortID
    var match: String?
    var count: Int?
}

/// A live trace request as the API shows it.
struct LiveTraceView: Encodable {
    var id: LiveTraceID
    var portId: PortID
    var match: String
    var count: Int
    var tenantId: String?
    /// Seconds the request lives without a read of its results.
    var leaseTTL: Int64
}

/// `GET /v1/trace-requests/{id}/results`.
struct LiveTraceResults: Encodable {
    struct Result: Encodable {
        /// The store revision the agent wrote it at: pass the largest as `after`.
        var revision: Revision
        var report: TraceReport
    }
    var results: [Result]
    /// The store's revision when read: `after` for the next read when there are no results.
    var revision: Revision
}

extension LiveTraceRequest {
    /// How long a request outlives the last read of its results.
    static let leaseTTL: Int64 = 10
    /// The longest a results read waits for a packet.
    static let longestWait = 20
}

extension HiveAPIServer {
    func addTraceRoutes(to v1: RouterGroup<APIRequestContext>) {
        let repository = repository
        let tracer = PacketTracer(repository: repository)
        v1.post("traces") { request, context -> Response in
            _ = try request.query(allowing: [])
            let principal = try context.requirePrincipal()
            let spec = try await JSONObjectBody.read(request, context: context).decode(TraceSpec.self)
            do {
                let report = try await tracer.trace(spec) { principal.mayAccess(tenantId: $0.tenantId) }
                return JSONResponse.make(status: .ok, body: report)
            } catch let error as TraceSpecError {
                throw APIError.invalid(field: error.field, value: error.value, problem: error.problem)
            }
        }
        v1.post("trace-requests") { request, context -> Response in
            _ = try request.query(allowing: [])
            let principal = try context.requirePrincipal()
            let body = try await JSONObjectBody.read(request, context: context).decode(LiveTraceBody.self)
            let access = TopologyAccess(repository: repository, principal: principal)
            guard let port = try await access.find(body.portId)?.object else {
                throw APIError.invalid(field: "portId", value: body.portId.description, problem: "names no port")
            }
            if port.isInterior {
                throw APIError.invalid(field: "portId", value: body.portId.description, problem: "is an interior (linked) port; packets enter by exterior ports")
            }
            let match: TraceMatch
            do {
                match = try TraceMatch(parsing: body.match ?? "")
            } catch let error as ModelError {
                throw APIError.invalid(error.fieldErrors)
            }
            let count = body.count ?? 10
            guard (1...LiveTraceRequest.countLimit).contains(count) else {
                throw APIError.invalid(field: "count", value: String(count), problem: "is out of range (expected 1 to \(LiveTraceRequest.countLimit))")
            }
            let tenant: String? = if case .tenant(let tenant) = principal { tenant } else { nil }
            let traced = LiveTraceRequest(portId: port.id, match: match, count: count, tenantId: tenant)
            let store = repository.store
            let lease = try await store.grantLease(ttl: LiveTraceRequest.leaseTTL)
            do {
                _ = try await store.put(TopologyKeys.traceRequest(traced.id), value: Array(try JSONEncoder().encode(traced)), lease: lease.id)
            } catch {
                try? await store.revokeLease(lease.id)
                throw error
            }
            return JSONResponse.make(status: .created, body: Self.view(traced), headers: [.location: "/v1/trace-requests/\(traced.id)"])
        }
        v1.get("trace-requests/{id}") { request, context -> Response in
            _ = try request.query(allowing: [])
            let (traced, _) = try await Self.liveTrace(context, in: repository)
            return JSONResponse.make(status: .ok, body: Self.view(traced))
        }
        v1.get("trace-requests/{id}/results") { request, context -> Response in
            let query = try request.query(allowing: ["after", "wait"])
            let after = try query.index("after").map(Revision.init) ?? 0
            let wait = try query.index("wait") ?? 0
            guard wait <= LiveTraceRequest.longestWait else {
                throw APIError.malformed("query parameter wait: '\(wait)' is too long (expected 0 to \(LiveTraceRequest.longestWait) seconds)", field: "wait", value: String(wait))
            }
            let (traced, lease) = try await Self.liveTrace(context, in: repository)
            let store = repository.store
            // A read is the client saying it is still there.
            _ = try? await store.keepAlive(lease)
            var results = try await Self.results(of: traced.id, after: after, in: store)
            if results.results.isEmpty, wait > 0 {
                await Self.waitForResult(of: traced.id, after: results.revision, seconds: wait, in: store)
                results = try await Self.results(of: traced.id, after: after, in: store)
            }
            return JSONResponse.make(status: .ok, body: results)
        }
        v1.delete("trace-requests/{id}") { request, context -> Response in
            _ = try request.query(allowing: [])
            let (traced, lease) = try await Self.liveTrace(context, in: repository)
            do {
                try await repository.store.revokeLease(lease)
            } catch StoreError.leaseNotFound {
                // Lapsed meanwhile: gone all the same.
            }
            _ = try await repository.store.delete(.key(TopologyKeys.traceRequest(traced.id)))
            return Response(status: .noContent)
        }
    }

    static func view(_ traced: LiveTraceRequest) -> LiveTraceView {
        LiveTraceView(
            id: traced.id, portId: traced.portId, match: traced.match.text, count: traced.count, tenantId: traced.tenantId,
            leaseTTL: LiveTraceRequest.leaseTTL)
    }

    /// The request in the path and its lease; 404 when gone or another tenant's.
    static func liveTrace(_ context: APIRequestContext, in repository: TopologyRepository) async throws -> (LiveTraceRequest, LeaseID) {
        let principal = try context.requirePrincipal()
        let text = context.parameters.get("id") ?? ""
        guard let id = LiveTraceID(parsing: text) else {
            throw APIError.malformed(
                "path parameter id: '\(printable(text))' is not a trace request id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)",
                field: "id", value: printable(text))
        }
        let read = try await repository.store.range(.key(TopologyKeys.traceRequest(id)))
        guard let keyValue = read.keyValues.first,
              let traced = try? JSONDecoder().decode(LiveTraceRequest.self, from: Data(keyValue.value)),
              principal.mayAccess(tenantId: traced.tenantId)
        else {
            throw APIError(.notFound, .notFound, "trace request \(id) does not exist (it ends when nobody reads its results for \(LiveTraceRequest.leaseTTL) s)")
        }
        return (traced, keyValue.lease)
    }

    static func results(of id: LiveTraceID, after: Revision, in store: any Store) async throws -> LiveTraceResults {
        let read = try await store.range(.prefix(TopologyKeys.traceResults(of: id)))
        let decoder = JSONDecoder()
        let results = read.keyValues
            .filter { $0.modRevision > after }
            .sorted { $0.modRevision < $1.modRevision }
            .compactMap { keyValue in
                (try? decoder.decode(TraceReport.self, from: Data(keyValue.value))).map {
                    LiveTraceResults.Result(revision: keyValue.modRevision, report: $0)
                }
            }
        return LiveTraceResults(results: results, revision: read.revision)
    }

    /// Returns when an agent writes a result after `revision`, or after `seconds`.
    static func waitForResult(of id: LiveTraceID, after revision: Revision, seconds: Int, in store: any Store) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let stream = await store.watch(.prefix(TopologyKeys.traceResults(of: id)), fromRevision: revision + 1)
                do {
                    for try await batch in stream where !batch.events.isEmpty { return }
                } catch {}
            }
            group.addTask { try? await Task.sleep(for: .seconds(seconds)) }
            await group.next()
            group.cancelAll()
        }
    }
}
