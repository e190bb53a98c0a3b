import HiveStore
import Prometheus

/// The API's Prometheus metrics, served at `/metrics`:
///
/// - `hive_api_requests_total{route, method, status}`: every request, by
///   route pattern (`/v1/bridges/{id}`; `unmatched` for unknown paths).
/// - `hive_api_request_duration_seconds{route, method}`: handling time.
/// - `hive_api_store_errors_total{error}`: NSDB failures met while serving
///   (`unavailable`, `outcome_unknown`, `corrupt`, ...).
public struct APIMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    private static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        // Present from the start, so a scrape shows the series before the first failure.
        _ = registry.makeCounter(descriptor: Self.storeErrors, labels: [("error", "unavailable")])
    }

    private static var requests: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "hive", subsystem: "api", metricName: "requests", unitName: "total",
        helpText: "HTTP requests served, by route pattern, method and status.") }
    private static var durations: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "hive", subsystem: "api", metricName: "request_duration", unitName: "seconds",
        helpText: "Time to handle a request, by route pattern and method.") }
    private static var storeErrors: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "hive", subsystem: "api", metricName: "store_errors", unitName: "total",
        helpText: "NSDB errors met while serving requests, by kind.") }

    func recordRequest(route: String?, method: String, status: Int, duration: Duration) {
        let route = route.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))])
            .increment()
        registry.makeDurationHistogram(descriptor: Self.durations, labels: [("route", route), ("method", method)], buckets: Self.durationBuckets)
            .record(duration)
    }

    /// Counts store failures among the errors a request met.
    func recordFailure(_ error: any Error) {
        let kind: String
        switch error {
        case let error as StoreError:
            switch error {
            case .unavailable: kind = "unavailable"
            case .outcomeUnknown: kind = "outcome_unknown"
            case .rejected: kind = "rejected"
            case .closed: kind = "closed"
            case .compacted: kind = "compacted"
            case .futureRevision: kind = "future_revision"
            case .leaseNotFound: kind = "lease_not_found"
            }
        case RepositoryError.corrupt:
            kind = "corrupt"
        case RepositoryError.contention:
            kind = "contention"
        default:
            return
        }
        registry.makeCounter(descriptor: Self.storeErrors, labels: [("error", kind)]).increment()
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
