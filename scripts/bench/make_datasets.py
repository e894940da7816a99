#!/usr/bin/env python3
"""Benchmark datasets: fills a real server deterministically and keeps the RDB / AOF files it writes.

Every dataset gets a fresh server (Redis 7.0 by default), is filled from a fixed seed through
`redis-cli --pipe` (raw RESP generated here, so a million commands take seconds), then SAVEd. Files go
to bench-data/ (gitignored):

    strings.rdb              ~2M string keys: integers, short text, compressible text > 20 bytes (LZF)
    small-aggregates.rdb     ~1M small hashes / sets / zsets / lists (listpack, intset encodings)
    huge-aggregates.rdb      a few hashtable hashes and sets, skiplist zsets and quicklists (1M+ elements)
    mixed-ttl-streams.rdb    every type, half the keys with a TTL, streams with groups, PELs and consumers
    one-big-value.rdb        a single list (or hash / zset / set) with millions of elements
    aof-plain.aof            a plain AOF: the commands as the server logged them (no RDB preamble)
    aof-multipart/           appendonlydir: AOF base (aof-use-rdb-preamble no) + incr files + manifest
    aof-multipart-preamble/  appendonlydir: RDB base (aof-use-rdb-preamble yes) + incr files + manifest
    datasets.json            what was made: server, version, seed, parameters, sizes

Redis 6.2 has no multi-part AOF: it writes aof-rewrite-plain.aof and aof-rewrite-preamble.aof (single
files) instead of the two directories.

The content is deterministic for a seed. The bytes are not quite: the server's AUX fields (ctime,
used-mem) and its hash-table iteration order (a random hash seed per process) change between runs.

    python3 scripts/bench/make_datasets.py                          # defaults: a few hundred MB, ~3 min
    python3 scripts/bench/make_datasets.py --scale 0.1              # everything 10x smaller
    python3 scripts/bench/make_datasets.py --only strings,one-big-value --strings 5000000
    python3 scripts/bench/make_datasets.py --server valkey-8.1 --out bench-data/valkey

Needs scripts/setup.sh (servers, redis-cli, the redis Python package).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import servers  # noqa: E402

REPO = servers.REPO_ROOT
SEED = 20250601
T2100 = 4102444800000  # 2100-01-01T00:00:00Z in ms: TTLs that never fire while benchmarking
DATASETS = ("strings", "small-aggregates", "huge-aggregates", "mixed-ttl-streams", "one-big-value", "aof")

WORDS = [w.encode() for w in (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu user session cart order item "
    "price total status active pending shipped name email city country zip phone created updated "
    "token value count level score rank group team owner admin guest public private cache page"
).split()]


def resp(*args: bytes) -> bytes:
    """One command as a RESP multibulk."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class Pipe:
    """Streams RESP commands into `redis-cli --pipe` (which reads the replies and counts errors)."""

    def __init__(self, srv: servers.Server):
        self.proc = subprocess.Popen(
            [redis_cli(), "-h", srv.host, "-p", str(srv.port), "--pipe"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf: list[bytes] = []
        self.size = 0
        self.commands = 0

    def send(self, *args: bytes) -> None:
        b = resp(*args)
        self.buf.append(b)
        self.size += len(b)
        self.commands += 1
        if self.size >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        self.proc.stdin.write(b"".join(self.buf))
        self.buf.clear()
        self.size = 0

    def close(self) -> None:
        self._flush()
        self.proc.stdin.close()
        out = self.proc.stdout.read().decode(errors="replace")
        rc = self.proc.wait()
        if rc != 0 or "errors: 0," not in out:
            raise RuntimeError(f"redis-cli --pipe failed (exit {rc}):\n{out}")

    def __enter__(self) -> "Pipe":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self.proc.kill()
            self.proc.wait()


def redis_cli() -> str:
    found = shutil.which("redis-cli")
    if not found:
        raise SystemExit("redis-cli not found: run scripts/setup.sh")
    return found


def b(v) -> bytes:
    return str(v).encode()


# ---------------------------------------------------------------------------------------------------
# Value generators (all draw from the dataset's own seeded RNG)

def short_text(rng: random.Random) -> bytes:
    """1-20 bytes: never LZF-compressed (the server only tries above 20 bytes)."""
    return b"-".join(rng.choices(WORDS, k=rng.randint(1, 3)))[:20]


def compressible(rng: random.Random, lo: int = 40, hi: int = 400) -> bytes:
    """Text > 20 bytes drawn from a small vocabulary: LZF shrinks it to about half."""
    n = rng.randint(lo, hi)
    out = bytearray()
    while len(out) < n:
        out += rng.choice(WORDS)
        out += b" " if rng.random() < 0.8 else b", "
    return bytes(out[:n])


def integer(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.4:
        return b(rng.randint(0, 9999))
    if r < 0.8:
        return b(rng.randint(-(1 << 31), 1 << 31))
    return b(rng.randint(-(1 << 62), 1 << 62))


# ---------------------------------------------------------------------------------------------------
# Datasets: each fills `pipe` and returns a small dict of what it wrote

def fill_strings(pipe: Pipe, rng: random.Random, n: int) -> dict:
    kinds = {"int": 0, "short": 0, "compressible": 0}
    for i in range(n):
        key = b"str:%08d" % i
        r = rng.random()
        if r < 0.3:
            v = integer(rng)
            kinds["int"] += 1
        elif r < 0.6:
            v = short_text(rng)
            kinds["short"] += 1
        else:
            v = compressible(rng, 24, 160)
            kinds["compressible"] += 1
        pipe.send(b"SET", key, v)
    return {"keys": n, **kinds}


def fill_small_aggregates(pipe: Pipe, rng: random.Random, n: int) -> dict:
    counts = {"hash": 0, "set-intset": 0, "set-strings": 0, "zset": 0, "list": 0}
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            key = b"h:%07d" % i
            args = [b"HSET", key]
            for f in range(rng.randint(3, 20)):
                args += [rng.choice(WORDS) + b(f), short_text(rng) if rng.random() < 0.7 else integer(rng)]
            counts["hash"] += 1
        elif r < 0.45:
            key = b"si:%07d" % i
            args = [b"SADD", key] + [b(rng.randint(0, 1 << 20)) for _ in range(rng.randint(3, 40))]
            counts["set-intset"] += 1
        elif r < 0.55:
            key = b"ss:%07d" % i
            args = [b"SADD", key] + [short_text(rng) + b(j) for j in range(rng.randint(3, 12))]
            counts["set-strings"] += 1
        elif r < 0.75:
            key = b"z:%07d" % i
            args = [b"ZADD", key]
            for m in range(rng.randint(3, 20)):
                score = b(rng.randint(0, 100000)) if rng.random() < 0.5 else b"%.3f" % (rng.random() * 1000)
                args += [score, rng.choice(WORDS) + b(m)]
            counts["zset"] += 1
        else:
            key = b"l:%07d" % i
            args = [b"RPUSH", key] + [short_text(rng) if rng.random() < 0.6 else integer(rng)
                                      for _ in range(rng.randint(3, 30))]
            counts["list"] += 1
        pipe.send(*args)
    return {"keys": n, **counts}


def push_batched(pipe: Pipe, cmd: bytes, key: bytes, items, per_command: int = 1000) -> None:
    """Sends `cmd key item...` in commands of at most `per_command` items (an item may be several args)."""
    args: list[bytes] = []
    k = 0
    for item in items:
        if isinstance(item, tuple):
            args += item
        else:
            args.append(item)
        k += 1
        if k == per_command:
            pipe.send(cmd, key, *args)
            args, k = [], 0
    if args:
        pipe.send(cmd, key, *args)


def fill_huge_aggregates(pipe: Pipe, rng: random.Random, elements: int) -> dict:
    """Four hashtable hashes, two skiplist zsets, two quicklists, one string set, one integer set;
    `elements` is the size of the largest (the list); the others are fractions of it."""
    made = {}
    h = max(1, elements // 4)
    for j in range(4):
        key = b"huge:hash:%d" % j
        push_batched(pipe, b"HSET", key, ((b"field:%08d" % i, short_text(rng) if i % 3 else integer(rng))
                                          for i in range(h)))
        made[key.decode()] = h
    z = max(1, elements // 2)
    for j in range(2):
        key = b"huge:zset:%d" % j
        push_batched(pipe, b"ZADD", key, ((b"%.4f" % (rng.random() * 1e6), b"member:%08d" % i)
                                          for i in range(z)))
        made[key.decode()] = z
    for j in range(2):
        key = b"huge:list:%d" % j
        n = elements if j == 0 else elements // 2
        push_batched(pipe, b"RPUSH", key, (compressible(rng, 8, 60) if i % 4 == 0 else short_text(rng)
                                           for i in range(n)))
        made[key.decode()] = n
    s = max(1, elements // 4)
    push_batched(pipe, b"SADD", b"huge:set:strings", (b"m:%08d:%s" % (i, rng.choice(WORDS)) for i in range(s)))
    made["huge:set:strings"] = s
    push_batched(pipe, b"SADD", b"huge:set:ints", (b(rng.randint(0, 1 << 40)) for _ in range(s)))
    made["huge:set:ints"] = s
    return {"keys": len(made), "elements": made}


def fill_mixed(pipe: Pipe, rng: random.Random, n: int, streams: int, entries: int) -> dict:
    """`n` keys of every type (half with TTLs, spread over 4 databases), plus `streams` streams of
    `entries` entries with 2 consumer groups, pending entries and consumers each."""
    counts = {"string": 0, "hash": 0, "set": 0, "zset": 0, "list": 0, "with_ttl": 0}
    for db in range(4):
        pipe.send(b"SELECT", b(db))
        for i in range(db, n, 4):
            key = b"m:%d:%07d" % (db, i)
            r = rng.random()
            if r < 0.4:
                pipe.send(b"SET", key, compressible(rng) if rng.random() < 0.3 else short_text(rng))
                counts["string"] += 1
            elif r < 0.55:
                args = [b"HSET", key]
                for f in range(rng.randint(2, 200 if rng.random() < 0.05 else 10)):
                    args += [b"f%d" % f, short_text(rng)]
                pipe.send(*args)
                counts["hash"] += 1
            elif r < 0.7:
                pipe.send(b"SADD", key, *[short_text(rng) if rng.random() < 0.5 else integer(rng)
                                          for _ in range(rng.randint(2, 300 if rng.random() < 0.05 else 12))])
                counts["set"] += 1
            elif r < 0.85:
                args = [b"ZADD", key]
                for m in range(rng.randint(2, 200 if rng.random() < 0.05 else 10)):
                    args += [b"%.2f" % (rng.random() * 100), b"m%d" % m]
                pipe.send(*args)
                counts["zset"] += 1
            else:
                pipe.send(b"RPUSH", key, *[compressible(rng, 10, 80) for _ in range(rng.randint(2, 300 if rng.random() < 0.05 else 20))])
                counts["list"] += 1
            if rng.random() < 0.5:
                pipe.send(b"PEXPIREAT", key, b(T2100 + rng.randint(0, 10**9)))
                counts["with_ttl"] += 1
    pipe.send(b"SELECT", b"0")
    for s in range(streams):
        key = b"stream:%04d" % s
        base = 1700000000000 + s * 1000000
        for e in range(entries):
            args = [b"XADD", key, b"%d-%d" % (base + e // 3, e % 3)]
            for f in range(rng.randint(1, 5)):
                args += [rng.choice(WORDS), short_text(rng) if rng.random() < 0.7 else integer(rng)]
            pipe.send(*args)
        for g in (b"g1", b"g2"):
            pipe.send(b"XGROUP", b"CREATE", key, g, b"0")
            for c in (b"c1", b"c2", b"c3"):
                pipe.send(b"XREADGROUP", b"GROUP", g, c, b"COUNT", b(entries // 10), b"STREAMS", key, b">")
        # acknowledge some of g1's deliveries, delete a few entries (tombstones in the listpacks)
        pipe.send(b"XACK", key, b"g1", *[b"%d-%d" % (base + e // 3, e % 3) for e in range(0, entries // 10, 2)])
        pipe.send(b"XDEL", key, *[b"%d-%d" % (base + e // 3, e % 3) for e in range(entries - 50, entries, 5)])
        if s % 2:
            pipe.send(b"PEXPIREAT", key, b(T2100))
    return {"keys": n + streams, **counts, "streams": streams, "entries_per_stream": entries}


def fill_one_big_value(pipe: Pipe, rng: random.Random, n: int, kind: str) -> dict:
    key = b"big:" + kind.encode()
    if kind == "list":
        push_batched(pipe, b"RPUSH", key, (short_text(rng) if i % 2 else integer(rng) for i in range(n)))
    elif kind == "hash":
        push_batched(pipe, b"HSET", key, ((b"f:%09d" % i, short_text(rng)) for i in range(n)))
    elif kind == "zset":
        push_batched(pipe, b"ZADD", key, ((b"%.3f" % (rng.random() * 1e6), b"m:%09d" % i) for i in range(n)))
    else:
        push_batched(pipe, b"SADD", key, (b"m:%09d" % i for i in range(n)))
    return {"keys": 1, "type": kind, "elements": n}


def aof_workload(pipe: Pipe, rng: random.Random, n: int, tag: str) -> None:
    """A write mix as an application would issue it: sets, increments, pushes, hash updates, deletes,
    expiries, a few MULTI blocks."""
    for i in range(n):
        r = rng.random()
        k = rng.randint(0, n // 4)
        if r < 0.35:
            pipe.send(b"SET", b"%s:s:%d" % (tag.encode(), k), short_text(rng) if rng.random() < 0.6 else compressible(rng, 24, 120))
        elif r < 0.45:
            pipe.send(b"INCRBY", b"%s:c:%d" % (tag.encode(), k % 1000), b(rng.randint(1, 100)))
        elif r < 0.6:
            pipe.send(b"RPUSH", b"%s:l:%d" % (tag.encode(), k % 5000), *[short_text(rng) for _ in range(rng.randint(1, 5))])
        elif r < 0.75:
            pipe.send(b"HSET", b"%s:h:%d" % (tag.encode(), k % 20000), rng.choice(WORDS), short_text(rng))
        elif r < 0.85:
            pipe.send(b"ZADD", b"%s:z:%d" % (tag.encode(), k % 2000), b(rng.randint(0, 1000)), rng.choice(WORDS) + b(k))
        elif r < 0.9:
            pipe.send(b"SADD", b"%s:t:%d" % (tag.encode(), k % 5000), integer(rng))
        elif r < 0.95:
            pipe.send(b"PEXPIREAT", b"%s:s:%d" % (tag.encode(), k), b(T2100 + k))
        elif r < 0.98:
            pipe.send(b"DEL", b"%s:s:%d" % (tag.encode(), rng.randint(0, n // 4)))
        else:
            pipe.send(b"MULTI")
            pipe.send(b"INCR", b"%s:tx" % tag.encode())
            pipe.send(b"SET", b"%s:tx:last" % tag.encode(), b(i))
            pipe.send(b"EXEC")


# ---------------------------------------------------------------------------------------------------

def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return str(n)


def tree_size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def server_config(kind: str) -> dict:
    # Persistence is explicit (SAVE, BGREWRITEAOF); fsync is off so writes stay fast.
    return {"appendfsync": "no", "maxmemory": "0"}


def make_rdb(kind: str, name: str, out: Path, seed: int, fill) -> dict:
    t0 = time.time()
    rng = random.Random(f"{seed}:{name}")
    with servers.start_server(kind, config=server_config(kind)) as srv:
        with Pipe(srv) as pipe:
            info = fill(pipe, rng)
        info["commands"] = pipe.commands
        t1 = time.time()
        srv.save()
        target = out / f"{name}.rdb"
        shutil.copyfile(srv.rdb_path, target)
        info["dbsize"] = sum(srv.client(db).dbsize() for db in range(4))
    info.update(path=target.name, bytes=target.stat().st_size, fill_seconds=round(t1 - t0, 1),
                total_seconds=round(time.time() - t0, 1))
    return info


def make_aofs(kind: str, out: Path, seed: int, n: int) -> list[dict]:
    """Plain AOF (the commands as logged), then rewrites without and with the RDB preamble."""
    made = []
    rng = random.Random(f"{seed}:aof")
    t0 = time.time()
    cfg = server_config(kind) | {"aof-use-rdb-preamble": "no"}
    with servers.start_server(kind, appendonly=True, config=cfg) as srv:
        srv.wait_rewrite_done()
        r = srv.client()
        with Pipe(srv) as pipe:
            aof_workload(pipe, rng, n, "a")
        d = srv.aof_dir()
        if kind == "redis-6.2":
            plain_src = d / "appendonly.aof"
        else:
            manifest = (d / "appendonly.aof.manifest").read_text()
            incr = [ln.split()[1] for ln in manifest.splitlines() if " type i" in ln]
            plain_src = d / incr[-1]
        plain = out / "aof-plain.aof"
        wait_file_stable(plain_src)
        shutil.copyfile(plain_src, plain)
        made.append({"path": plain.name, "bytes": plain.stat().st_size, "kind": "plain AOF (commands as logged)",
                     "commands": pipe.commands})

        for preamble, name in (("no", "aof-multipart"), ("yes", "aof-multipart-preamble")):
            r.config_set("aof-use-rdb-preamble", preamble)
            r.bgrewriteaof()
            time.sleep(0.1)
            srv.wait_rewrite_done(timeout=600)
            with Pipe(srv) as pipe:
                aof_workload(pipe, rng, max(1, n // 5), "b" if preamble == "no" else "c")
            if kind == "redis-6.2":
                target = out / (("aof-rewrite-plain" if preamble == "no" else "aof-rewrite-preamble") + ".aof")
                wait_file_stable(d / "appendonly.aof")
                shutil.copyfile(d / "appendonly.aof", target)
            else:
                target = out / name
                if target.exists():
                    shutil.rmtree(target)
                for f in d.iterdir():
                    wait_file_stable(f)
                shutil.copytree(d, target)
            made.append({"path": target.name, "bytes": tree_size(target),
                         "kind": f"AOF rewrite, aof-use-rdb-preamble {preamble}, plus incr",
                         "files": sorted(f.name for f in target.iterdir()) if target.is_dir() else [target.name]})
    for m in made:
        m["total_seconds"] = round(time.time() - t0, 1)
    return made


def wait_file_stable(p: Path, timeout: float = 30) -> None:
    """The server writes AOF data from its event loop; wait until the size stops changing."""
    last = -1
    deadline = time.time() + timeout
    while time.time() < deadline:
        size = p.stat().st_size
        if size == last:
            return
        last = size
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="redis-7.0", choices=servers.KINDS)
    ap.add_argument("--out", type=Path, default=REPO / "bench-data")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--only", default=",".join(DATASETS), help=f"comma-separated subset of {', '.join(DATASETS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every size below")
    ap.add_argument("--strings", type=int, default=2_000_000, help="keys in strings.rdb")
    ap.add_argument("--small-aggregates", type=int, default=1_000_000, help="keys in small-aggregates.rdb")
    ap.add_argument("--huge-elements", type=int, default=1_200_000, help="elements of the largest huge aggregate")
    ap.add_argument("--mixed", type=int, default=300_000, help="non-stream keys in mixed-ttl-streams.rdb")
    ap.add_argument("--streams", type=int, default=200, help="streams in mixed-ttl-streams.rdb")
    ap.add_argument("--stream-entries", type=int, default=2000, help="entries per stream")
    ap.add_argument("--big-value", type=int, default=4_000_000, help="elements of the one big value")
    ap.add_argument("--big-value-type", default="list", choices=("list", "hash", "zset", "set"))
    ap.add_argument("--aof-commands", type=int, default=1_000_000, help="commands in the plain AOF")
    a = ap.parse_args()

    only = [x.strip() for x in a.only.split(",") if x.strip()]
    for x in only:
        if x not in DATASETS:
            ap.error(f"unknown dataset {x!r}; expected {', '.join(DATASETS)}")
    sc = lambda v: max(1, int(v * a.scale))  # noqa: E731
    a.out.mkdir(parents=True, exist_ok=True)
    kind = a.server
    version = servers.server_version(kind)
    print(f"{kind} {version} ({servers.find_binary(kind)}), seed {a.seed}, into {a.out}", flush=True)

    manifest_path = a.out / "datasets.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("server") != kind:
            manifest = {}
    except (OSError, ValueError):
        manifest = {}
    manifest.update(server=kind, server_version=version, seed=a.seed)
    files = manifest.setdefault("files", {})

    fills = {
        "strings": lambda p, r: fill_strings(p, r, sc(a.strings)),
        "small-aggregates": lambda p, r: fill_small_aggregates(p, r, sc(a.small_aggregates)),
        "huge-aggregates": lambda p, r: fill_huge_aggregates(p, r, sc(a.huge_elements)),
        "mixed-ttl-streams": lambda p, r: fill_mixed(p, r, sc(a.mixed), sc(a.streams), sc(a.stream_entries)),
        "one-big-value": lambda p, r: fill_one_big_value(p, r, sc(a.big_value), a.big_value_type),
    }
    started = time.time()
    for name in only:
        if name == "aof":
            for info in make_aofs(kind, a.out, a.seed, sc(a.aof_commands)):
                files[info["path"]] = info
                print(f"  {info['path']:<28} {human(info['bytes']):>10}  {info['kind']}", flush=True)
            continue
        info = make_rdb(kind, name, a.out, a.seed, fills[name])
        files[info["path"]] = info
        print(f"  {info['path']:<28} {human(info['bytes']):>10}  {info['dbsize']} keys, "
              f"{info['commands']} commands, {info['total_seconds']} s", flush=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    total = sum(tree_size(a.out / f) for f in files if (a.out / f).exists())
    print(f"done in {time.time() - started:.0f} s; bench-data total {human(total)} ({manifest_path})")


if __name__ == "__main__":
    main()
