// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Hive",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hive", targets: ["hive"]),
        .library(name: "HiveModel", targets: ["HiveModel"]),
        .library(name: "HiveStore", targets: ["HiveStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // Header and address value types. No I/O, no Foundation.
        .target(name: "HivePacket"),
        // Topology value types, typed IDs, validation.
        .target(name: "HiveModel", dependencies: ["HivePacket"]),
        // The Store protocol, the embedded store, the etcd client, the topology repository.
        .target(
            name: "HiveStore",
            dependencies: [
                "HiveModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hive",
            dependencies: [
                "HiveModel",
                "HiveStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "HivePacketTests", dependencies: ["HivePacket"]),
        .testTarget(name: "HiveModelTests", dependencies: ["HiveModel"]),
        .testTarget(name: "HiveStoreTests", dependencies: ["HiveStore", "HiveModel"]),
    ]
)
