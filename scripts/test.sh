#!/usr/bin/env bash
# Sets up a fresh machine (apt/pip packages, Redis 6.2/7.0 and Valkey 8.1 binaries) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test "$@"
