#!/usr/bin/env bash
# Builds the libFuzzer target (every decoder: packets, records, bundles, archives, link framings, bundle contents,
# codes and other person-typed text; see Sources/CourierFuzz/main.swift) with AddressSanitizer and runs it.
# Usage: scripts/fuzz.sh [SECONDS]   (default 600). Crashes land in fuzz-artifacts/; commit each one as a
# regression case under Tests/CourierWireTests/FuzzRegressions/ (replayed by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
# swiftc keeps only the last -sanitize= option, and SwiftPM passes -sanitize=fuzzer -sanitize=address: without the
# combined flag the Swift code gets AddressSanitizer but no coverage instrumentation (libFuzzer runs blind).
# The linker's many "Cannot export local symbol '__asan_...'" warnings are left out of the output.
log=$(mktemp)
if ! swift build --product CourierFuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address \
        --scratch-path .build-fuzz >"$log" 2>&1; then
    grep -v -E "Cannot export local symbol|^ld.lld: warning" "$log" | tail -40
    echo "fuzz.sh: the fuzz target did not build" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
# Seed corpus: every packet, payload and bundle in the protocol's test vectors.
python3 - "$corpus" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); n = 0
root = pathlib.Path("protocol/vectors")
def put(tag, hexs):
    global n
    (out / f"seed-{n}").write_bytes(bytes([tag]) + bytes.fromhex(hexs)); n += 1
for v in json.loads((root / "packets.json").read_text()):
    put(0, v["packetHex"]); put(1, v["payloadHex"])
for v in json.loads((root / "bundles.json").read_text()):
    put(3, v["bundleHex"])
for v in json.loads((root / "archives.json").read_text()):
    put(2, v["archiveHex"][8:-64])   # the body after the magic, without the tag: the harness seals it
for v in json.loads((root / "fragments.json").read_text()):
    for r in v["recordsHex"]: put(1, r)
for v in json.loads((root / "invalid.json").read_text()):
    put({"bundle": 3, "payload": 1}.get(v["decoder"], 0), v["hex"])
for v in json.loads((root / "framing.json").read_text())["frames"] + json.loads((root / "kiss.json").read_text())["frames"] \
        + json.loads((root / "kiss.json").read_text())["rnode"]:
    put(4, "00" + v["frameHex"])
for f in ("framing.json", "kiss.json"):
    for v in json.loads((root / f).read_text())["streams"]:
        put(4, "03010710" + v["streamHex"])
codes = json.loads((root / "codes.json").read_text())
for v in codes["joinCodes"] + codes["identityCodes"] + codes["invalid"]:
    put(6, v["code"].encode().hex())
for v in codes["identityCodes"]:
    put(5, "00" + v["signingPublic"] + v["agreementPublic"] + v["name"].encode().hex())
print(f"seed corpus: {n} inputs")
PY
mkdir -p fuzz-artifacts
ASAN_OPTIONS=detect_leaks=1 .build-fuzz/debug/CourierFuzz -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=fuzz-artifacts/ "$corpus"
