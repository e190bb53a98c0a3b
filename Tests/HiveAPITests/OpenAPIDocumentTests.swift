import Foundation
import HiveAPI
import HiveStore
import Hummingbird
import Testing

/// The OpenAPI document and the router describe the same routes.
@Suite struct OpenAPIDocumentTests {
    /// "METHOD /path" for every operation under `paths:` in the document.
    /// The document's layout is fixed (two-space indents), which this relies on.
    static func documentedRoutes(_ document: String) -> Set<String> {
        var routes: Set<String> = []
        var inPaths = false
        var path: String?
        for line in document.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(String(key)) {
                    routes.insert("\(key.uppercased()) \(path)")
                }
            }
        }
        return routes
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let store = UnreachableStore()
        let server = HiveAPIServer(repository: TopologyRepository(store: store), tokens: Token.table)
        let served = Set(server.buildRouter().routes.map { "\($0.method.rawValue) \($0.path)" })
        let documented = Self.documentedRoutes(HiveAPIServer.openAPIDocument)
        #expect(served.count > 60, "the router has all its routes: \(served.sorted())")
        #expect(served.subtracting(documented).sorted() == [], "routes missing from openapi.yaml")
        #expect(documented.subtracting(served).sorted() == [], "documented routes the server lacks")
    }

    @Test func theParserSeesOperationsOnly() {
        let sample = """
            openapi: 3.0.3
            paths:
              /v1/things/{id}:
                parameters:
                  - $ref: "#/components/parameters/id"
                get:
                  responses: {}
                delete:
                  responses: {}
            components:
              schemas:
                get:
                  type: object
            """
        #expect(Self.documentedRoutes(sample) == ["GET /v1/things/{id}", "DELETE /v1/things/{id}"])
    }
}
