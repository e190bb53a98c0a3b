// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Hive",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hive", targets: ["hive"]),
        .library(name: "HiveModel", targets: ["HiveModel"]),
        .library(name: "HiveStore", targets: ["HiveStore"]),
        // For the separate Benchmarks/ package.
        .library(name: "HivePacket", targets: ["HivePacket"]),
        .library(name: "HiveDatapath", targets: ["HiveDatapath"]),
        .library(name: "HiveSimulation", targets: ["HiveSimulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Header and address value types. No I/O, no Foundation.
        .target(name: "HivePacket"),
        // Topology value types, typed IDs, validation.
        .target(name: "HiveModel", dependencies: ["HivePacket"]),
        // A small HTTP/1.1 client on SwiftNIO, plain or TLS: for etcd's gateway and the Hive API.
        .target(
            name: "HiveHTTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // The Store protocol, the embedded store, the etcd client, the topology repository.
        .target(
            name: "HiveStore",
            dependencies: [
                "HiveModel",
                "HivePacket",
                "HiveHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The simulation: a packet's whole path through the virtual topology. Pure: no I/O, no await.
        .target(name: "HiveSimulation", dependencies: ["HivePacket", "HiveModel"]),
        // The Linux calls of the datapath that Glibc does not expose (AF_PACKET, recvmmsg/sendmmsg, setns).
        .target(name: "CHiveSystem"),
        // Packet I/O, tunnels, the flow table, action execution. Knows nothing of devices.
        .target(name: "HiveDatapath", dependencies: ["CHiveSystem", "HivePacket"]),
        // The agent: NSDB mirror, bindings, simulation upcalls, learning, invalidation.
        .target(
            name: "HiveAgent",
            dependencies: [
                "HiveDatapath", "HiveSimulation", "HiveStore", "HiveModel", "HivePacket",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The agent's HTTP listener: /metrics, and its state (flows, ports) for operators behind a token.
        .target(
            name: "HiveAgentHTTP",
            dependencies: [
                "HiveAgent", "HiveModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The sandbox's network of namespaces (iproute2), and its tiny HTTP servers (setns from CHiveSystem).
        .target(name: "HiveSandbox", dependencies: ["CHiveSystem"]),
        // The REST API on Hummingbird: validates intent and writes it to the NSDB.
        .target(
            name: "HiveAPI",
            dependencies: [
                "HiveModel",
                "HivePacket",
                "HiveSimulation",
                "HiveStore",
                "HiveHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("openapi.yaml")]
        ),
        // A typed client of the REST API, for the CLI and tests.
        .target(
            name: "HiveClient",
            dependencies: [
                "HiveModel", "HiveHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "hive",
            dependencies: [
                "HiveModel",
                "HiveStore",
                "HiveAPI",
                "HiveClient",
                "HiveSimulation",
                "HiveAgent",
                "HiveAgentHTTP",
                "HiveSandbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test support shared by test targets: throwaway etcd clusters (plain or TLS) and test certificates.
        .target(name: "HiveTestSupport", dependencies: ["HiveHTTP"], path: "Tests/HiveTestSupport"),
        .testTarget(name: "HivePacketTests", dependencies: ["HivePacket"]),
        .testTarget(name: "HiveModelTests", dependencies: ["HiveModel"]),
        .testTarget(name: "HiveStoreTests", dependencies: ["HiveStore", "HiveModel", "HiveHTTP", "HiveTestSupport"]),
        .testTarget(
            name: "HiveAPITests",
            dependencies: [
                "HiveAPI", "HiveStore", "HiveModel", "HiveClient", "HiveTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "HiveSimulationTests", dependencies: ["HiveSimulation", "HivePacket", "HiveModel", "HiveStore"]),
        .testTarget(name: "HiveCLITests", dependencies: ["HiveModel", "HiveClient", "HiveAgentHTTP"]),
        .testTarget(name: "HiveDatapathTests", dependencies: ["HiveDatapath", "HivePacket", "HiveSandbox", "CHiveSystem", "HiveTestSupport"]),
        .testTarget(name: "HiveAgentTests", dependencies: [
            "HiveAgent", "HiveAgentHTTP", "HiveAPI", "HiveSandbox", "HiveStore", "HiveModel", "HivePacket", "HiveClient",
            "HiveTestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "HiveSandboxTests", dependencies: ["HiveSandbox"]),
    ]
)
