#!/usr/bin/env bash
# The whole speed comparison in one command: installs what it needs (scripts/setup.sh: servers,
# redis-tools, rdbtools; plus rdb-py), makes the datasets when bench-data/ lacks them (Redis 7.0 set and
# the Redis 6.2 set that rdbtools can read), builds release, and runs every mode and every other tool on
# the same files in one run (alternating runs, medians), with imports into fresh local servers.
# Writes bench-results/latest.md (and .json) and Benchmarks/RESULTS.md, and copies the summary into README.md.
#
#   scripts/bench.sh                  # ~25 min on 2 cores (datasets ~4 min the first time)
#   scripts/bench.sh --budget 10      # extra arguments go to rdbbench
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pip install --quiet rdb-py 2>/dev/null || echo "bench.sh: rdb-py not installed (its rows are left out)" >&2
[ -f bench-data/strings.rdb ] || python3 scripts/bench/make_datasets.py
[ -f bench-data/redis-6.2/strings.rdb ] || python3 scripts/bench/make_datasets.py --server redis-6.2 \
    --out bench-data/redis-6.2 --scale 0.25 --only strings,small-aggregates,huge-aggregates,mixed-ttl-streams,one-big-value
# The Swift runtime linked statically, as a shipped binary would be: process start-up is ~3 ms instead
# of ~6 ms of dynamic symbol binding, which is 5% of a 50 ms run.
swift build -c release --static-swift-stdlib --product rdbcat
swift build -c release --static-swift-stdlib --product rdbcat-full   # import (rdbcat runs it for everything but cat)
swift build -c release --static-swift-stdlib --product rdbbench
files=(bench-data/*.rdb bench-data/aof-plain.aof bench-data/aof-multipart bench-data/aof-multipart-preamble bench-data/redis-6.2/*.rdb)
.build/release/rdbbench --compare --import --budget 60 --write-results "$@" "${files[@]}"
python3 scripts/bench/readme_table.py
