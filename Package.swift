// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "promptline",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "QueryCore", targets: ["QueryCore"]),
        .library(name: "PromptSession", targets: ["PromptSession"]),
        .executable(name: "promptline", targets: ["promptline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The query core: OpenAI + Anthropic backends, no terminal, no files except spec loading.
        .target(
            name: "QueryCore",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Session state, commands, stats, transcripts: no terminal, no HTTP details.
        .target(
            name: "PromptSession", dependencies: ["QueryCore", "CTerminal", .product(name: "Yams", package: "Yams")]),
        .systemLibrary(
            name: "CLibEdit",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),
        // SIGINT self-pipe handler and terminal helpers, in C (signal handlers must be).
        .target(name: "CTerminal"),
        .target(name: "LineEditor", dependencies: ["CLibEdit", "CTerminal"]),
        // What reaches a terminal: display widths, layout, Markdown rendering. No I/O of its own.
        .target(name: "Terminal"),
        .executableTarget(
            name: "promptline",
            dependencies: [
                "QueryCore", "PromptSession", "LineEditor", "CTerminal", "Terminal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // An HTTP/1.1 server on 127.0.0.1:0 that answers with scripted, possibly broken, replies.
        // A library (not a test target) so every test target and the e2e helper executable share it.
        .target(
            name: "TestHTTPServer",
            dependencies: [
                "QueryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "promptline-test-server", dependencies: ["TestHTTPServer", "QueryCore"]),
        // Fuzz targets (scripts/fuzz builds them with libFuzzer); a corpus runner otherwise.
        .executableTarget(
            name: "promptline-fuzz",
            dependencies: ["QueryCore", "PromptSession", .product(name: "Logging", package: "swift-log")]
        ),
        // The in-process benchmarks behind scripts/bench.
        .executableTarget(
            name: "promptline-bench",
            dependencies: [
                "TestHTTPServer", "QueryCore", "PromptSession", "Terminal",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "QueryCoreTests",
            dependencies: [
                "QueryCore", "TestHTTPServer",
                // docs/library.md's snippets, run by LibraryDocTests, use both.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "TerminalTests", dependencies: ["Terminal"]),
        .testTarget(name: "PromptSessionTests", dependencies: ["PromptSession", "QueryCore", "TestHTTPServer"]),
    ]
)

// Every Swift target: a member is visible only where its module is imported (no leaking through
// another file's imports), so each file says what it uses.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
