// swift-tools-version: 6.1
// Hive's benchmarks, a package of their own so the main `swift test` never
// builds them. Run from this directory:
//
//     swift package --allow-writing-to-package-directory benchmark
//
// See ../docs/benchmarks.md for the recorded figures.
import PackageDescription

let package = Package(
    name: "HiveBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Hive", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SimulationBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "HiveDatapath", package: "Hive"),
                .product(name: "HivePacket", package: "Hive"),
                .product(name: "HiveSimulation", package: "Hive"),
                .product(name: "HiveModel", package: "Hive"),
            ],
            path: "Benchmarks/SimulationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // A plain loop over the same workloads, for profilers (valgrind --tool=callgrind, perf).
        .executableTarget(
            name: "SimulationProfile",
            dependencies: [
                .product(name: "HivePacket", package: "Hive"),
                .product(name: "HiveSimulation", package: "Hive"),
                .product(name: "HiveModel", package: "Hive"),
            ],
            path: "Sources/SimulationProfile"
        ),
    ]
)
