// swift-tools-version:6.1
// Micro-benchmarks of the per-crash hot pieces (ordo-one's package-benchmark), in a package of
// their own so that the main package's builds (and CI) never compile them or their dependencies.
// Run: scripts/bench-micro (README, "Performance").
import PackageDescription

let package = Package(
    name: "BreakwaterBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "breakwater", path: ".."),
        // The malloc interposer gives the allocation counts; the runtime interposer is left out.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Collector", package: "breakwater"),
                .product(name: "Telemetry", package: "breakwater"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
