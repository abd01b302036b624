// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CourierWire", targets: ["CourierWire"]),
        .library(name: "CourierStore", targets: ["CourierStore"]),
        .library(name: "CourierMedium", targets: ["CourierMedium"]),
        .library(name: "CourierLinks", targets: ["CourierLinks"]),
        .library(name: "CourierNode", targets: ["CourierNode"]),
        .executable(name: "relay", targets: ["relay"]),
        .executable(name: "courier-bench", targets: ["courier-bench"]),
        .executable(name: "courier-dev", targets: ["courier-dev"]),
        .executable(name: "CourierFuzz", targets: ["CourierFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // System libraries (Debian: apt-get install libzstd-dev libserialport-dev libmosquitto-dev).
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(
            name: "CLibSerialPort", pkgConfig: "libserialport",
            providers: [.apt(["libserialport-dev"]), .brew(["libserialport"])]),
        // The MQTT client of `mqtt:` links (gateways joined through a broker).
        .systemLibrary(
            name: "CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"]), .brew(["mosquitto"])]),

        // bzip2, used only by the benchmark to model LXMF's resource compression.
        .systemLibrary(name: "CBzip2", providers: [.apt(["libbz2-dev"]), .brew(["bzip2"])]),

        // Layer 1: wire. Pure values and codecs, no I/O.
        .target(
            name: "CourierWire",
            dependencies: [
                "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Layer 2: store. The durable delay-tolerant queue in SQLite (WAL, synchronous=FULL).
        .target(
            name: "CourierStore",
            dependencies: [
                "CourierWire",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Layer 2½: medium facts. What a link is like (MTU, bit rate, duplex, airtime of a frame): the engine plans with
        // them, the links declare them. No dependencies, so the engine needs neither the links nor libserialport.
        .target(name: "CourierMedium"),

        // Layer 3: links. Serial ports (libserialport, termios for ptys), framed serial, KISS, RNode, TCP, MQTT
        // (libmosquitto), Meshtastic (its client API's protobuf messages through swift-protobuf; the generated code
        // is committed).
        .target(
            name: "CourierLinks",
            dependencies: [
                "CourierWire", "CourierMedium", "CLibSerialPort", "CMosquitto", .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),

        // Layer 4: the relay engine and the mesh simulator that drives it on a virtual clock. The engine does no network
        // or clock I/O (packets, time and submissions come in; packets, deliveries and events go out); it keeps its
        // durable state in the store (see ARCHITECTURE.md).
        .target(name: "CourierNode", dependencies: ["CourierWire", "CourierStore", "CourierMedium"]),
        .target(
            name: "CourierSim",
            dependencies: [
                "CourierNode", "CourierWire", "CourierStore", "CourierMedium", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Mutual-aid pacts (issue 17): the ledger, derived from the signed pact records in the store.
        .target(name: "CourierPacts", dependencies: ["CourierWire", "CourierStore"]),

        // Layer 5: the runtime (real links, real clock) and the operator's `relay` command.
        .target(
            name: "CourierRuntime",
            dependencies: ["CourierNode", "CourierLinks", "CourierStore", "CourierWire", "CourierPacts", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "relay",
            dependencies: [
                "CourierRuntime", "CourierNode", "CourierLinks", "CourierStore", "CourierWire", "CourierPacts", "CourierSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Tools: the corpus, peer cost models and shared code of the benchmark and developer commands.
        .target(name: "CourierTooling", dependencies: ["CourierWire", "CBzip2"]),
        // Devices for tests: a pty the test holds the other end of, an emulator of the RNode firmware on one.
        .target(name: "CourierTestSupport", dependencies: ["CourierLinks"]),
        .executableTarget(
            name: "courier-bench",
            dependencies: [
                "CourierSim",
                "CourierWire",
                "CourierStore",
                "CourierTooling",
                "CourierRuntime",
                "CourierNode",
                "CourierLinks",
                "CMosquitto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "courier-dev",
            dependencies: [
                "CourierSim",
                "CourierWire",
                "CourierLinks",
                "CourierStore",
                "CourierTooling",
                "CZstd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // libFuzzer entry point: build with scripts/fuzz.sh (see README).
        .executableTarget(name: "CourierFuzz", dependencies: ["CourierWire", "CourierLinks"]),

        .testTarget(
            name: "CourierWireTests",
            dependencies: [
                "CourierWire",
                "CourierTooling",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .testTarget(
            name: "CourierStoreTests",
            dependencies: [
                "CourierStore", "CourierWire", "CourierTooling", "CourierTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CourierLinksTests",
            dependencies: ["CourierLinks", "CourierWire", "CourierTooling", "CourierTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "CourierNodeTests",
            dependencies: ["CourierNode", "CourierSim", "CourierStore", "CourierWire", "CourierLinks"]),
        // The runtime in this process: engines on real SQLite files, links on real ptys.
        .testTarget(
            name: "CourierRuntimeTests",
            dependencies: ["CourierRuntime", "CourierNode", "CourierStore", "CourierWire", "CourierLinks", .product(name: "Logging", package: "swift-log")]),
        // Spawns the built `relay` executable. Meshtastic/ holds the device emulator (Python, on the meshtastic package).
        .testTarget(name: "RelayTests", dependencies: ["CourierWire", "CourierLinks", "CourierTestSupport"], exclude: ["Meshtastic"]),
    ],
    swiftLanguageModes: [.v6]
)
