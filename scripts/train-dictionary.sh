#!/usr/bin/env bash
# Reproducible training of compression dictionary 1 (protocol/dictionaries/courier-1.zdict).
# Needs Debian's zstd 1.5.4 command-line tool (apt-get install zstd); another zstd version may pick a different
# dictionary, which is fine for a new dictionary number but would not reproduce this one byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=$(mktemp -d)
trap 'rm -rf "$samples"' EXIT
swift build -c release --product courier-dev >/dev/null
.build/release/courier-dev dictionary --export-samples "$samples"
zstd -q -f --train-cover=k=386,d=6 --maxdict=65536 -19 "$samples"/* -o "$samples/courier-1.zdict"
.build/release/courier-dev dictionary --install "$samples/courier-1.zdict"
