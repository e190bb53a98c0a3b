import HiveStore
import Hummingbird
import Logging
import Synchronization

/// The routes the server answers, as "METHOD /path/{param}" patterns, filled
/// once the router is built. Used to tell "no such path" (404) from "no such
/// method on this path" (405 with `Allow`).
final class RouteTable: Sendable {
    private let patterns = Mutex<[(method: String, segments: [Substring])]>([])

    func set(_ routes: [(method: String, path: String)]) {
        patterns.withLock { $0 = routes.map { ($0.method, $0.path.split(separator: "/")) } }
    }

    /// The methods some route accepts for `path`, sorted.
    func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/")
        return patterns.withLock { patterns in
            Set(patterns.filter { pattern in
                pattern.segments.count == segments.count
                    && zip(pattern.segments, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
            }.map(\.method)).sorted()
        }
    }
}

/// Turns every error a handler throws into the API's JSON error body with
/// the right status, so no route ever answers with Hummingbird's defaults.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let routes: RouteTable
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var apiError = APIError(translating: error)
            if let httpError = error as? HTTPError, httpError.status == .notFound {
                apiError = unrouted(request)
            }
            metrics.recordFailure(error)
            if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)",
                ])
            } else {
                context.logger.debug("request refused", metadata: ["status": "\(apiError.status.code)", "error": "\(apiError.message)"])
            }
            return apiError.response()
        }
    }

    /// 404 for an unknown path, 405 naming the allowed methods for a known one.
    private func unrouted(_ request: Request) -> APIError {
        let allowed = routes.methods(forPath: request.uri.path)
        let target = "\(request.method) \(printable(request.uri.path))"
        if allowed.isEmpty {
            return APIError(.notFound, .notFound, "no such route: \(target) (see /openapi.yaml for the API's paths)")
        }
        return APIError(
            .methodNotAllowed, .methodNotAllowed,
            "\(target) is not supported (this path takes \(allowed.joined(separator: ", ")))",
            headers: [.allow: allowed.joined(separator: ", ")])
    }
}

/// Counts every request by route pattern, method and status, outermost, so
/// it sees the status the client gets.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // ErrorMiddleware answers every error; anything reaching here is a 500.
            metrics.recordRequest(route: context.endpointPath, method: request.method.rawValue, status: 500, duration: ContinuousClock.now - start)
            throw error
        }
        let duration = ContinuousClock.now - start
        metrics.recordRequest(route: context.endpointPath, method: request.method.rawValue, status: response.status.code, duration: duration)
        context.logger.debug("\(request.method) \(request.uri.path) \(response.status.code) in \(duration)")
        return response
    }
}
