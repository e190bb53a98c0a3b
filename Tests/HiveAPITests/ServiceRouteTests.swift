import Foundation
import HiveAPI
import Testing

@Suite struct ServiceRouteTests {
    @Test func healthzAnswersWhenTheStoreDoes() async throws {
        try await withAPI { api in
            let health = try await api.get("/healthz", token: nil)
            #expect(health.status == .ok)
            #expect(health.string("status") == "ok")
        }
    }

    @Test func metricsCountRequestsByRouteMethodAndStatus() async throws {
        try await withAPI { api in
            let id = try await api.create("/v1/bridges", Body.bridge("web"))
            _ = try await api.get("/v1/bridges/\(id)")
            _ = try await api.get("/v1/bridges/\(id)")
            _ = try await api.get("/v1/bridges/3f2504e0-4f89-11d3-9a0c-0305e82c3301")
            _ = try await api.get("/v1/nothing-here")
            let reply = try await api.get("/metrics", token: nil)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = reply.text
            #expect(text.contains(#"hive_api_requests_total{route="/v1/bridges",method="POST",status="201"} 1"#), "\(text)")
            #expect(text.contains(#"hive_api_requests_total{route="/v1/bridges/{id}",method="GET",status="200"} 2"#))
            #expect(text.contains(#"hive_api_requests_total{route="/v1/bridges/{id}",method="GET",status="404"} 1"#))
            #expect(text.contains(#"hive_api_requests_total{route="unmatched",method="GET",status="404"} 1"#))
            #expect(text.contains("# TYPE hive_api_request_duration_seconds histogram"))
            #expect(text.contains("hive_api_store_errors_total"))
        }
    }

    @Test func openAPIDocumentIsServed() async throws {
        try await withAPI { api in
            let reply = try await api.get("/openapi.yaml", token: nil)
            #expect(reply.status == .ok)
            #expect(reply.text.hasPrefix("openapi: 3.0"))
            #expect(reply.text == HiveAPIServer.openAPIDocument)
        }
    }
}
