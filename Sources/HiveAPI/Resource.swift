import Foundation
import HiveModel
import HiveStore
import Hummingbird

/// How the API serves one model type. Every type is served the same way
/// (see `ResourceHandlers`); these are the few things that differ.
protocol APIResource: TopologyObject {
    /// The collection's name in messages ("hosts are admin-only").
    static var collection: String { get }
    /// Hosts, tunnel zones and bindings: tenants get 403.
    static var adminOnly: Bool { get }
    /// Clears what the server manages (tunnel keys, links, rule lists), so a
    /// body may carry them back without effect, and fills generated defaults.
    mutating func prepareForCreate()
    /// Keeps what the server owns on a replace.
    mutating func keepManagedFields(of stored: Self)
    /// Fields a PUT body may leave out, with the stored values to use.
    func fieldsKeptWhenOmitted() -> [String: JSONFragment]
    /// `alive` for each object, for kinds that report liveness (hosts).
    static func liveness(in repository: TopologyRepository) async throws -> Set<ObjectID<Self>>?
}

extension APIResource {
    static var adminOnly: Bool { false }
    mutating func prepareForCreate() {}
    mutating func keepManagedFields(of stored: Self) {}
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] { [:] }
    static func liveness(in repository: TopologyRepository) async throws -> Set<ObjectID<Self>>? { nil }
}

/// A field a sub-collection takes from its path (`/v1/routers/{id}/routes`
/// gives each route its `routerId`).
struct ParentField<T: APIResource>: Sendable {
    var name: String
    var id: UUID
    var value: @Sendable (T) -> UUID
}

/// The create / read / list / replace / delete handlers every resource shares.
struct ResourceHandlers<T: APIResource>: Sendable {
    let repository: TopologyRepository

    /// The repository as the caller sees it; 403 for tenants on admin-only kinds.
    func access(_ context: APIRequestContext) throws -> TopologyAccess {
        if T.adminOnly { try context.requireAdmin(for: T.collection) }
        return TopologyAccess(repository: repository, principal: try context.requirePrincipal())
    }

    // MARK: Responses

    func respond(_ stored: Stored<T>, status: HTTPResponse.Status = .ok) async throws -> Response {
        let alive = try await T.liveness(in: repository).map { $0.contains(stored.object.id) }
        return JSONResponse.object(stored, status: status, alive: alive)
    }

    func respond(list items: [Stored<T>]) async throws -> Response {
        let live = try await T.liveness(in: repository)
        return JSONResponse.list(items, alive: { item in live.map { $0.contains(item.object.id) } })
    }

    // MARK: Handlers

    /// GET /v1/<collection>: every visible object, in id order, that `matches`.
    /// Filters read their query parameters before calling this (so a bad
    /// value is refused even when nothing would match).
    func list(_ request: Request, _ context: APIRequestContext, query: [String] = [],
              matching matches: (T) -> Bool = { _ in true }) async throws -> Response {
        let access = try access(context)
        _ = try request.query(allowing: query)
        let items = try await access.list(T.self).filter { matches($0.object) }
        return try await respond(list: items)
    }

    /// GET /v1/<collection>/{id}
    func read(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let access = try access(context)
        _ = try request.query(allowing: [])
        return try await respond(access.get(context.pathID(T.self)))
    }

    /// POST /v1/<collection>: 201 with the stored object. `id` is generated
    /// when absent; `parent` comes from the path; `write` stores the object
    /// (the repository's create unless the kind needs more).
    func create(
        _ request: Request, _ context: APIRequestContext, query: [String] = [], parent: ParentField<T>? = nil,
        write: ((T, QueryParameters) async throws -> Stored<T>)? = nil
    ) async throws -> Response {
        let access = try access(context)
        let parameters = try request.query(allowing: query)
        let body = try await JSONObjectBody.read(request, context: context)
        var defaults = ["id": JSONFragment(ObjectID<T>().description)]
        if let parent { defaults[parent.name] = JSONFragment(parent.id.uuidString.lowercased()) }
        var object = try body.decode(T.self, defaults: defaults)
        if let parent { try check(parent, in: object) }
        object.prepareForCreate()
        try access.assignTenant(to: &object)
        try await access.checkReferences(of: object)
        let stored: Stored<T>
        if let write {
            stored = try await write(object, parameters)
        } else {
            stored = try await repository.create(object)
        }
        return try await respond(stored, status: .created)
    }

    /// PUT /v1/<collection>/{id}: replaces the object; `If-Match` guards it.
    func replace(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let access = try access(context)
        _ = try request.query(allowing: [])
        let id = try context.pathID(T.self)
        let expectedRevision = try request.expectedRevision()
        let current = try await access.get(id)
        let body = try await JSONObjectBody.read(request, context: context)
        var defaults = current.object.fieldsKeptWhenOmitted()
        defaults["id"] = JSONFragment(id.description)
        if let tenant = current.object.tenantId { defaults["tenantId"] = JSONFragment(tenant) }
        var object = try body.decode(T.self, defaults: defaults)
        guard object.id == id else {
            throw APIError.invalid(
                field: "id", value: object.id.description,
                problem: "differs from the id in the path \(id) (expected the same id, or omit it)")
        }
        object.keepManagedFields(of: current.object)
        try access.assignTenant(to: &object)
        try await access.checkReferences(of: object)
        return try await respond(repository.update(object, expectedRevision: expectedRevision))
    }

    /// DELETE /v1/<collection>/{id}: 204; `If-Match` guards it.
    func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let access = try access(context)
        _ = try request.query(allowing: [])
        let id = try context.pathID(T.self)
        let expectedRevision = try request.expectedRevision()
        _ = try await access.get(id)
        try await repository.delete(T.self, id: id, expectedRevision: expectedRevision)
        return JSONResponse.noContent()
    }

    /// A parent id in the body must agree with the path.
    private func check(_ parent: ParentField<T>, in object: T) throws {
        let given = parent.value(object)
        guard given == parent.id else {
            throw APIError.invalid(
                field: parent.name, value: given.uuidString.lowercased(),
                problem: "differs from the id in the path \(parent.id.uuidString.lowercased()) (expected the same id, or omit \(parent.name))")
        }
    }
}
