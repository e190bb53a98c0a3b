import HiveModel
import HiveStore
import Hummingbird

extension Chain: APIResource {
    static var collection: String { "chains" }
    /// Rules join a chain by being created in it.
    mutating func prepareForCreate() { ruleIds = [] }
    /// A PUT may reorder `ruleIds`; without it the order stays.
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] { ["ruleIds": JSONFragment(ruleIds)] }
}

extension Rule: APIResource {
    static var collection: String { "rules" }
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] { ["chainId": JSONFragment(chainId)] }
}

extension HiveAPIServer {
    /// Chains and their ordered rules: /v1/chains, /v1/chains/{id},
    /// /v1/chains/{id}/rules (`?position=N` on POST), /v1/rules/{id}.
    func addChainRoutes(to v1: RouterGroup<APIRequestContext>) {
        let repository = repository
        let chains = ResourceHandlers<Chain>(repository: repository)
        let rules = ResourceHandlers<Rule>(repository: repository)
        v1.get("chains") { try await chains.list($0, $1) }
        v1.post("chains") { try await chains.create($0, $1) }
        v1.get("chains/{id}") { try await chains.read($0, $1) }
        v1.put("chains/{id}") { try await chains.replace($0, $1) }
        v1.delete("chains/{id}") { try await chains.delete($0, $1) }

        // In evaluation order, not id order.
        v1.get("chains/{id}/rules") { request, context in
            let chain = try await chains.access(context).get(context.pathID(Chain.self))
            _ = try request.query(allowing: [])
            let position = Dictionary(chain.object.ruleIds.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            let members = try await rules.access(context).list(Rule.self).filter { $0.object.chainId == chain.object.id }
            let ordered = members.sorted {
                (position[$0.object.id] ?? Int.max, $0.object.id) < (position[$1.object.id] ?? Int.max, $1.object.id)
            }
            return try await rules.respond(list: ordered)
        }
        v1.post("chains/{id}/rules") { request, context in
            let chain = try await chains.access(context).get(context.pathID(Chain.self))
            let parent = ParentField<Rule>(name: "chainId", id: chain.object.id.uuid, value: { $0.chainId.uuid })
            return try await rules.create(request, context, query: ["position"], parent: parent) { rule, query in
                try await repository.insertRule(rule, at: query.index("position"))
            }
        }
        v1.get("rules/{id}") { try await rules.read($0, $1) }
        v1.put("rules/{id}") { try await rules.replace($0, $1) }
        v1.delete("rules/{id}") { try await rules.delete($0, $1) }
    }
}
