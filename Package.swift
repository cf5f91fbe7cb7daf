// swift-tools-version:6.0
import PackageDescription

/// The C libraries the collector links, each a system library found with pkg-config (bzip2 ships
/// no .pc file in Debian 12: its headers and library are in the default paths). librabbitmq is
/// not linked but loaded when a RabbitMQ queue is made (Sources/CRabbitMQ/shim.h), so its
/// pkg-config entry, which would add -lrabbitmq, is not used either.
let cLibraries: [(name: String, pkgConfig: String?, apt: String)] = [
    ("CZlib", "zlib", "zlib1g-dev"),
    ("CRabbitMQ", nil, "librabbitmq-dev"),
    ("CBrotli", "libbrotlidec", "libbrotli-dev"),
    ("CZstd", "libzstd", "libzstd-dev"),
    ("CLzma", "liblzma", "liblzma-dev"),
    ("CBzip2", nil, "libbz2-dev"),
]

extension Target.Dependency {
    static let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
    static let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
    static let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
    static let nioConcurrency = Target.Dependency.product(name: "NIOConcurrencyHelpers", package: "swift-nio")
    static let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
    // RSA (RS256) for Google service-account JWTs.
    static let cryptoExtras = Target.Dependency.product(name: "_CryptoExtras", package: "swift-crypto")
    static let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
    static let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
    static let httpClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
    static let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
}

let package = Package(
    name: "breakwater",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "breakwater", targets: ["breakwater"]),
        // For the fuzzer package in Fuzz/.
        .library(name: "Collector", targets: ["Collector"]),
        // For the micro-benchmarks in Benchmarks/ (the audit line and metric updates).
        .library(name: "Telemetry", targets: ["Telemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
    ],
    targets: cLibraries.map { lib in
        .systemLibrary(name: lib.name, path: "Sources/\(lib.name)", pkgConfig: lib.pkgConfig,
                       providers: [.apt([lib.apt])])
    } + [
        // libdeflate's decompressor (1.26, upstream's source; Sources/CDeflate/README.md), built
        // here rather than linked from the system: Debian 12's 1.14 checks the gzip CRC-32 four
        // times slower and inflates a few percent slower, 3% of a gzipped crash's CPU in all.
        .target(name: "CDeflate", exclude: ["README.md", "vendor/libdeflate/COPYING"]),
        // Log lines, statsd, Prometheus: the only place that formats what operators read.
        .target(
            name: "Telemetry",
            dependencies: [
                .logging, .metrics, .nioConcurrency,
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["README.md"]
        ),
        // The server: HTTP front, pipeline, protocols, backends, outbox.
        .target(
            name: "Collector",
            dependencies: ["Telemetry", "CDeflate"] + cLibraries.map { .target(name: $0.name) } + [
                .nioCore, .nioPosix, .nioHTTP1, .nioConcurrency, .crypto, .cryptoExtras, .logging,
                .metrics, .lifecycle, .httpClient,
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ],
            // Each folder's README says what it owns (the README's "Shape").
            exclude: ["Breakpad", "Configuration", "Decoding", "Files", "Google", "HTTP", "Operations", "Outbox",
                      "Pipeline", "Queue", "Sentry", "Storage", "Throttling"].map { "\($0)/README.md" }
        ),
        // Client-side tools (submitter, multipart writer, deflater): never run in the server.
        .target(
            name: "CrashClient",
            dependencies: ["Collector", "CZlib", .httpClient, .nioCore],
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "breakwater",
            dependencies: [
                "Collector", "CrashClient", "Telemetry", .lifecycle, .logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Read by the linker (below), not compiled.
            exclude: ["hot-functions.txt"],
            // Resident memory (docs/performance.md, "Issue 16, fifth pass"): the toolchain's lld
            // packs the executable's 125,000 relative relocations into a 24 KB table (3 MB of RELA
            // read at every start), and the package's own symbols are not exported, since nothing
            // loads a plugin that would look them up (the static stdlib's are already hidden by
            // `--exclude-libs`).
            linkerSettings: [
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                             .when(platforms: [.linux])),
                // The functions serving runs first, next to each other (scripts/release-build, which
                // gives every function its own section so that they can move; docs/performance.md,
                // "Issue 16, ninth pass"). A listed name the code no longer has is skipped, silently.
                .unsafeFlags(["-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/breakwater/hot-functions.txt",
                              "-Xlinker", "--no-warn-symbol-ordering"],
                             .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        .executableTarget(
            name: "BenchFloor",
            dependencies: ["Collector", .crypto, .nioCore]
        ),
        .testTarget(
            name: "TelemetryTests",
            dependencies: ["Telemetry", .logging, .metrics]
        ),
        .testTarget(
            name: "CollectorTests",
            dependencies: [
                "Collector", "CrashClient", "Telemetry", "CDeflate", "CZlib", "CZstd", "CRabbitMQ",
                .httpClient, .nioCore, .nioPosix, .nioHTTP1, .nioConcurrency, .crypto, .cryptoExtras,
                // The reference multipart parser the hand-written one is checked against.
                .product(name: "MultipartKit", package: "multipart-kit"),
            ],
            exclude: ["Clients"],
            // The broker tests read queues with rabbitmq-c directly.
            linkerSettings: [.linkedLibrary("rabbitmq")]
        ),
    ]
)
