// swift-tools-version:6.0
// The libFuzzer target for the request decoders, in a package of its own so that the main
// package's builds never try to link an executable without `main`.
// Build and run: see README ("Fuzzing").
import PackageDescription

let package = Package(
    name: "BreakwaterFuzz",
    dependencies: [.package(name: "breakwater", path: "..")],
    targets: [
        .executableTarget(
            name: "DecoderFuzzer",
            dependencies: [.product(name: "Collector", package: "breakwater")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ],
    swiftLanguageModes: [.v5]
)
