#!/usr/bin/env bash
# Sets up a fresh machine, builds rdbcat and runs it on a bundled sample dump (a Redis 7.0 file from testdata/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product rdbcat
swift build -c release --product rdbcat-full   # rdbcat runs it for import, sync, migrate, serve, s3:// inputs
sample="${1:-testdata/corpus/redis/encodings.rdb}"
echo "== rdbcat $sample --format stats"
.build/release/rdbcat "$sample" --format stats
echo "== rdbcat $sample --format jsonl"
.build/release/rdbcat "$sample" --format jsonl
