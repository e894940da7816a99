// swift-tools-version: 6.1
import PackageDescription

// Start-up: the toolchain's static-stdlib link exports every symbol (~56k), and the runtime's first dladdr
// (the backtracer's set-up, before main) scans them all: -1.2 ms a run of the full binary.
let startupLinkerSettings: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--no-export-dynamic"])]
// The decoder CLI (`rdbcat`, which only reads files and writes output) is linked as a fixed-address executable:
// a PIE has ~40k relative relocations to apply at every start and the pages they dirty (~120 page faults),
// 0.8 ms of a 3.6 ms run on a small file (`perf stat -r 100`: 3.64 -> 2.75 ms). The cost is ASLR of its own
// code; `rdbcat-full`, which talks to servers, holds passwords and serves the task API, stays a PIE.
let decoderLinkerSettings: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--no-export-dynamic", "-Xlinker", "-no-pie"])]

let package = Package(
    name: "swift-rdb",
    products: [
        .library(name: "RDBKit", targets: ["RDBKit"]),
        .library(name: "RDBSinks", targets: ["RDBSinks"]),
        .library(name: "RedisWire", targets: ["RedisWire"]),
        .library(name: "RDBImport", targets: ["RDBImport"]),
        .library(name: "RDBReplication", targets: ["RDBReplication"]),
        .library(name: "RDBMigration", targets: ["RDBMigration"]),
        .library(name: "ObjectStore", targets: ["ObjectStore"]),
        .library(name: "RDBService", targets: ["RDBService"]),
        .executable(name: "rdbcat", targets: ["rdbcat"]),
        .executable(name: "rdbcat-full", targets: ["rdbcat-full"]),
        .executable(name: "rdbbench", targets: ["rdbbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // the migration-task service: HTTP, the task stores, graceful shutdown, metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CLZF", pkgConfig: "liblzf", providers: [.apt(["liblzf-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // bytes -> typed events: input windows, wire primitives, compact encodings, RDB and AOF decoders.
        .target(name: "RDBKit", dependencies: ["CLZF", "CZstd", "CZlib", "CCRC64Fold"]),
        // CRC-64 folding with carry-less multiplication (x86-64 PCLMULQDQ; other CPUs use the tables).
        .target(name: "CCRC64Fold"),
        // Cache hints (prefetch) for hash tables too large for the caches.
        .target(name: "CMemoryHints"),
        // typed events -> bytes: JSON, JSONL, RESP, RESTORE, reports.
        .target(name: "RDBSinks", dependencies: ["RDBKit", "CMemoryHints"]),
        // RESP over NIO, where NIO enters: endpoints, connecting (TCP, TLS), the handshake, replies, typed
        // server errors.
        .target(
            name: "RedisWire",
            dependencies: [
                "RDBKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // talking to servers: live import (pipelined, reconnecting), migration tasks.
        .target(
            name: "RDBImport",
            dependencies: [
                "RDBKit", "RDBSinks", "RedisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // S3-compatible buckets (Huawei OBS, AWS S3, moto), where HTTP and crypto enter: SigV4 signing, HEAD,
        // ranged GETs, ListObjectsV2, and an object read as RDBKit's ByteStream (resumable, bounded memory).
        .target(
            name: "ObjectStore",
            dependencies: [
                "RDBKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // acting as a replica of a live source: the replication link, its framing and spool, the sync engine.
        .target(
            name: "RDBReplication",
            dependencies: [
                "RDBKit", "RDBSinks", "RDBImport", "RedisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // migration tasks: the API's Codable task model, validation, the runner (shared by the CLI and a service).
        .target(name: "RDBMigration", dependencies: ["RDBImport", "RDBSinks", "RedisWire", "ObjectStore", "RDBReplication"]),
        // the migration-task service (`rdbcat serve`): the HTTP API (Hummingbird), the task stores (SQLite
        // through GRDB, PostgreSQL through postgres-nio, behind one protocol), workers with leases, metrics.
        .target(
            name: "RDBService",
            dependencies: [
                "RDBMigration", "RDBImport", "RDBReplication", "RedisWire", "ObjectStore", "RDBSinks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // `cat` and the flags it shares with import and migrate, without the service stack.
        .target(
            name: "RDBCatCommand",
            dependencies: ["RDBKit", "RDBSinks", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // rdbcat decodes files itself and execs rdbcat-full (a product of its own: depending on it would link
        // its libraries here) for everything else, so that decoding does not pay for the service stack at
        // start-up (see Sources/rdbcat/RDBCat.swift).
        .executableTarget(
            name: "rdbcat",
            dependencies: [
                "RDBCatCommand", "RDBKit", "RDBSinks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: decoderLinkerSettings
        ),
        // every command: import, sync, migrate, serve, and cat with s3:// inputs.
        .executableTarget(
            name: "rdbcat-full",
            dependencies: [
                "RDBCatCommand", "RDBKit", "RDBSinks", "RDBImport", "RDBMigration", "RedisWire", "ObjectStore", "RDBReplication", "RDBService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: startupLinkerSettings
        ),
        .executableTarget(name: "rdbbench", dependencies: ["RDBKit", "RDBSinks"]),
        // shared by the test targets: starting servers and programs.
        .target(name: "RDBTestSupport", dependencies: ["RedisWire"], path: "Tests/RDBTestSupport", exclude: ["moto_bucket.py"]),
        .testTarget(name: "RDBKitTests", dependencies: ["RDBKit", "RDBSinks", "RDBTestSupport"]),
        .testTarget(name: "RDBImportTests", dependencies: ["RDBImport", "RedisWire", "RDBKit", "RDBSinks", "RDBTestSupport", "RDBReplication", "RDBCatCommand"]),
        .testTarget(name: "RDBMigrationTests", dependencies: ["RDBMigration", "RDBImport", "RedisWire"]),
        // the task service: stores (SQLite, a real PostgreSQL), the API driven over HTTP, restarts, leases.
        .testTarget(
            name: "RDBServiceTests",
            dependencies: [
                "RDBService", "RDBMigration", "RDBTestSupport", "RedisWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SigV4 vectors; the object reader against moto_server (signature checking on) and a cutting proxy.
        .testTarget(name: "ObjectStoreTests", dependencies: ["ObjectStore", "RDBKit", "RDBTestSupport"]),
        // the connection and the pipeline on NIO's EmbeddedChannel: no server.
        .testTarget(
            name: "RedisWireTests",
            dependencies: [
                "RedisWire", "RDBImport", "RDBKit", "RDBSinks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)

// Micro-benchmarks (package-benchmark) only on request: plain `swift build` / `swift test` / CI never
// resolve or compile them. `ENABLE_BENCHMARKS=1 swift package benchmark` (see Benchmarks/README.md).
if Context.environment["ENABLE_BENCHMARKS"] != nil {
    package.dependencies += [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ]
    package.targets += [
        .executableTarget(
            name: "RDBBenchmarks",
            dependencies: ["RDBKit", "RDBSinks", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/RDBBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
}
