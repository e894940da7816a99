#!/usr/bin/env bash
# Runs `rdbcat FILE --format jsonl` over mutated real dumps under a 2 GiB address-space limit and a 10 s
# timeout, and over a few hand-made hostile files (huge claims, a zstd bomb behind a claim). Checks:
#   - no signal (trap, abort, segfault), no timeout;
#   - every non-zero exit printed a message on stderr;
#   - stdout is whole JSONL lines (no half key), also when the run failed.
# Reports exit codes per mutation kind, the peak RSS and the slowest run.
#
#   scripts/mutate-check.sh [COUNT] [SEED]      # default 400 mutations, seed 1
# Environment: RDBCAT (default .build/release/rdbcat; build it with `swift build -c release --product rdbcat`),
# KEEP=dir to keep the failing inputs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export RDBCAT="${RDBCAT:-$repo/.build/release/rdbcat}"
[ -x "$RDBCAT" ] || { echo "mutate-check: $RDBCAT not built (swift build -c release --product rdbcat)" >&2; exit 2; }
exec python3 - "$repo" "${1:-400}" "${2:-1}" <<'PY'
import json, os, random, resource, shutil, struct, subprocess, sys, tempfile, time

repo, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rdbcat = os.environ["RDBCAT"]
keep = os.environ.get("KEEP")
LIMIT_AS = 2 << 30
TIMEOUT = 10.0
rng = random.Random(seed)

dumps = []
for root, _, names in os.walk(os.path.join(repo, "testdata")):
    if "/fuzz" in root:
        continue
    for n in names:
        if n.endswith(".rdb"):
            p = os.path.join(root, n)
            if os.path.getsize(p) <= 512 << 10:
                dumps.append(p)
dumps.sort()
blobs = {p: open(p, "rb").read() for p in dumps}

def length(v):
    if v < 64: return bytes([v])
    if v < 16384: return bytes([0x40 | (v >> 8), v & 0xFF])
    if v <= 0xFFFFFFFF: return b"\x80" + struct.pack(">I", v)
    return b"\x81" + struct.pack(">Q", v)

HUGE = [length(0xFFFFFFFF), length(1 << 40), b"\x81" + b"\xff" * 8, length(1 << 31), b"\xc3" + length(4) + length(1 << 31)]

def mutate(kind, b):
    n = len(b)
    if kind == "truncate":
        return b[:rng.randrange(0, n)]
    if kind == "bitflip":
        m = bytearray(b)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(9 if n > 9 else 0, n)
            m[i] ^= 1 << rng.randrange(8)
        return bytes(m)
    if kind == "byteflip":
        m = bytearray(b)
        for _ in range(rng.randint(1, 4)):
            m[rng.randrange(n)] = rng.choice([0x00, 0xFF, 0x80, 0x81, 0xC3, 0x3F, 0x7F, rng.randrange(256)])
        return bytes(m)
    if kind == "stomp-length":
        # Replace the byte(s) at a random position after the header with a hostile length field.
        i = rng.randrange(9, n) if n > 10 else 0
        w = rng.choice([1, 2, 5, 9])
        return b[:i] + rng.choice(HUGE + [length(n - i), length(n - i + 1), b"\x3f", b"\x7f\xff"]) + b[i + w:]
    if kind == "huge-claim":
        i = rng.randrange(9, n) if n > 10 else 0
        return b[:i] + rng.choice(HUGE) + b[i:]
    if kind == "splice":
        other = blobs[rng.choice(dumps)]
        return b[:rng.randrange(0, n)] + other[rng.randrange(0, len(other)):]
    if kind == "zero-range":
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 512))
        return b[:i] + bytes(j - i) + b[j:]
    if kind == "duplicate-range":
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 256))
        return b[:j] + b[i:j] + b[j:]
    raise ValueError(kind)

KINDS = ["truncate", "bitflip", "byteflip", "stomp-length", "huge-claim", "splice", "zero-range", "duplicate-range"]

def limit():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

def run(path):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([rdbcat, path, "--format", "jsonl", "--no-progress"], stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, preexec_fn=limit)
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > TIMEOUT:
                p.kill()
                timed_out = True
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.002)
        wall = time.monotonic() - t0
        out.seek(0); err.seek(0)
        stdout, stderr = out.read(), err.read()
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    problems = []
    if timed_out: problems.append("timeout")
    elif sig: problems.append(f"signal {sig}")
    elif code != 0 and not stderr.strip(): problems.append(f"exit {code} without a message")
    if stdout and not stdout.endswith(b"\n"): problems.append("output ends inside a line")
    for line in stdout.splitlines():
        try:
            json.loads(line)
        except Exception:
            problems.append("half a key / invalid JSON line"); break
    return code, sig, timed_out, ru.ru_maxrss, wall, problems, stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]

work = tempfile.mkdtemp(prefix="mutate-check-")
failures = []
stats = {k: {} for k in KINDS}
peak = (0, "")
slowest = (0.0, "")
messages = {}
print(f"mutate-check: {count} mutations of {len(dumps)} dumps, seed {seed}, RLIMIT_AS 2 GiB, timeout {TIMEOUT:.0f} s, {rdbcat}")
for i in range(count):
    kind = KINDS[i % len(KINDS)]
    src = rng.choice(dumps)
    data = mutate(kind, blobs[src])
    path = os.path.join(work, f"m{i:04d}-{kind}.rdb")
    open(path, "wb").write(data)
    code, sig, to, rss, wall, problems, last = run(path)
    key = "timeout" if to else f"signal {sig}" if sig else f"exit {code}"
    stats[kind][key] = stats[kind].get(key, 0) + 1
    if rss > peak[0]: peak = (rss, f"{kind} of {os.path.relpath(src, repo)}")
    if wall > slowest[0]: slowest = (wall, f"{kind} of {os.path.relpath(src, repo)}")
    if code:
        msg = last[0].split(": ")
        kindmsg = next((m for m in msg if m in ("truncated", "bad-magic", "unsupported-version", "unknown-type-or-opcode",
                        "invalid-length", "corrupt-encoding", "lzf", "checksum", "limit-exceeded", "invalid-value",
                        "trailing-data", "io", "aof-format")), "other")
        messages[kindmsg] = messages.get(kindmsg, 0) + 1
    if problems:
        failures.append((path, kind, src, problems))
        if keep:
            os.makedirs(keep, exist_ok=True); shutil.copy(path, keep)
    else:
        os.unlink(path)

print(f"{'kind':16} results")
for k in KINDS:
    print(f"{k:16} " + ", ".join(f"{v} {c}" for c, v in sorted(stats[k].items())))
print("error codes of non-zero exits: " + ", ".join(f"{k} {v}" for k, v in sorted(messages.items())))
print(f"peak RSS {peak[0] / 1024:.1f} MiB ({peak[1]}); slowest {slowest[0]:.2f} s ({slowest[1]})")

# Hand-made hostile files.
def rdb(body, version=9):
    return f"REDIS{version:04d}".encode() + body
hostile = {
    "string-claims-2e40.rdb": rdb(b"\x00\x01k" + length(1 << 40) + bytes(64)),
    "list-count-2e62.rdb": rdb(b"\x01\x01k" + length(1 << 62) + bytes(64)),
    "lzf-declares-2gib.rdb": rdb(b"\x00\x01k\xc3" + length(4) + length(1 << 31) + b"\x02abc" + b"\xff" + bytes(8)),
    "lzf-declares-88x.rdb": rdb(b"\x00\x01k\xc3" + length(1 << 20) + length(88 << 20) + b"\xe0" * (1 << 20) + b"\xff" + bytes(8)),
    "ziplist-header-4gib.rdb": rdb(b"\x0a\x01k" + length(14) + struct.pack("<IIH", 0xFFFFFFFF, 10, 0xFFFF) + b"\x00\x01a\xff" + b"\xff" + bytes(8), 6),
    "stream-absurd-counts.rdb": rdb(b"\x13\x01k" + length(0xFFFFFFFF) + bytes(64), 11),
}
for name, data in hostile.items():
    open(os.path.join(work, name), "wb").write(data)
# A zstd bomb behind a 4 GB string claim (below the default 8 GiB streaming record limit): streamed.
if shutil.which("zstd"):
    bomb = os.path.join(work, "zstd-bomb-4g-claim.rdb.zst")
    with open(bomb, "wb") as f:
        z = subprocess.Popen(["zstd", "-1", "-q", "-c"], stdin=subprocess.PIPE, stdout=f)
        z.stdin.write(rdb(b"\x00\x01k" + length(0xFFFFFFF0)))
        chunk = bytes(1 << 24)
        for _ in range(3 * 64):  # 3 GiB of zeros
            z.stdin.write(chunk)
        z.stdin.close(); z.wait()
    hostile["zstd-bomb-4g-claim.rdb.zst"] = None
    bomb2 = os.path.join(work, "zstd-bomb-2e40-claim.rdb.zst")
    with open(bomb2, "wb") as f:
        z = subprocess.Popen(["zstd", "-1", "-q", "-c"], stdin=subprocess.PIPE, stdout=f)
        z.stdin.write(rdb(b"\x00\x01k" + length(1 << 40)))
        for _ in range(64):
            z.stdin.write(chunk)
        z.stdin.close(); z.wait()
    hostile["zstd-bomb-2e40-claim.rdb.zst"] = None
print(f"{'hostile file':30} {'size':>9} {'exit':>5} {'RSS MiB':>8} {'s':>5}  message")
for name in hostile:
    path = os.path.join(work, name)
    code, sig, to, rss, wall, problems, last = run(path)
    if problems: failures.append((path, "hostile", name, problems))
    print(f"{name:30} {os.path.getsize(path):9} {('sig%d' % sig) if sig else code:>5} {rss / 1024:8.1f} {wall:5.2f}  {last[0][:110]}")

shutil.rmtree(work, ignore_errors=True)
if failures:
    print(f"FAILED: {len(failures)} runs")
    for path, kind, src, problems in failures[:30]:
        print(f"  {kind} of {src}: {', '.join(problems)}")
    sys.exit(1)
print("ok: no signal, no timeout, every failure had a message, no half line")
PY
