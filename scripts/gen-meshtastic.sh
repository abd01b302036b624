#!/usr/bin/env bash
# Regenerates Sources/CourierLinks/Meshtastic/courier_meshtastic.pb.swift from protocol/meshtastic/courier_meshtastic.proto.
# Needs protoc (Debian: apt-get install protobuf-compiler) and protoc-gen-swift of the swift-protobuf version in
# Package.resolved (1.39.x: `swift build -c release --product protoc-gen-swift` in a swift-protobuf checkout), on PATH
# or given as PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift. CI does not run this: the generated file is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
    echo "gen-meshtastic.sh: protoc-gen-swift not found; put it on PATH or set PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift" >&2
    exit 69
fi
command -v protoc >/dev/null || { echo "gen-meshtastic.sh: protoc not found; apt-get install protobuf-compiler" >&2; exit 69; }
protoc --plugin=protoc-gen-swift="$plugin" -I protocol/meshtastic \
--swift_out=Sources/CourierLinks/Meshtastic \
    protocol/meshtastic/courier_meshtastic.proto
echo "wrote Sources/CourierLinks/Meshtastic/courier_meshtastic.pb.swift"
