import Testing
import RDBKit
import RDBSinks

/// A target that keeps what it is given and the size of its largest single write.
final class RecordingTarget: OutputTarget {
    var bytes: [UInt8] = []
    var writes = 0
    var writeSizes: [Int] = []
    var largestWrite = 0
    func write(_ b: UnsafeRawBufferPointer) throws {
        bytes.append(contentsOf: b)
        writes += 1
        writeSizes.append(b.count)
        largestWrite = max(largestWrite, b.count)
    }
    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A buffer growing through 2, 4, 8 and 16 MiB of storage keeps every byte, and hands them over whole.
@Test func outputBufferGrowsKeepingEveryByte() throws {
    let out = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var expected: [UInt8] = []
    var i: UInt64 = 0
    while expected.count < 9 << 20 {  // through 2, 4, 8 and 16 MiB of storage
        let piece = withUnsafeBytes(of: i.littleEndian) { Array($0) } + Array(repeating: UInt8(truncatingIfNeeded: i), count: Int(i % 4000))
        piece.withUnsafeBytes { out.append($0) }
        expected += piece
        i += 1
    }
    #expect(Array(out.bytes) == expected)
    out.reserve(40 << 20)
    #expect(Array(out.bytes) == expected)
    let target = RecordingTarget()
    try out.handOff(to: target)
    #expect(target.bytes == expected)
    #expect(out.pendingCount == 0)
}

/// Huge keys are written out in bounded parts unless the buffer keeps keys whole.
@Suite struct ChunkedOutputTests {
    static let chunk = 64 << 10

    /// One small key, one list of 40,000 elements, one hash of 20,000 fields, one small key.
    static func bigKeys() -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "a", value: RDBBuilder.string("1"))
        var list = RDBBuilder.length(40_000)
        for i in 0..<40_000 { list += RDBBuilder.string("element-\(i)") }
        b.key(type: 1, "big:list", value: list, expireMs: 1_900_000_000_000)
        var hash = RDBBuilder.length(20_000)
        for i in 0..<20_000 { hash += RDBBuilder.string("field-\(i)") + RDBBuilder.string("value \"\(i)\"") }
        b.key(type: 4, "big:hash", value: hash)
        b.key(type: 0, "z", value: RDBBuilder.string("2"))
        return b.finished()
    }

    /// The output of `make` over `file`: all in memory, and through a recording target with small key chunks.
    static func render<V: RDBVisitor>(
        _ file: [UInt8], keepWholeKeys: Bool = false, options: RDBDecoderOptions = .init(), _ make: (OutputBuffer) -> V
    ) throws -> (whole: [UInt8], target: RecordingTarget, out: OutputBuffer) {
        let memory = OutputBuffer(target: nil)
        var v1 = make(memory)
        _ = try RDBReader.decode(bytes: file, into: &v1, options: options)
        let target = RecordingTarget()
        let out = OutputBuffer(target: target, flushThreshold: 4096, keyChunkThreshold: chunk)
        out.keepsWholeKeys = keepWholeKeys
        var v2 = make(out)
        _ = try RDBReader.decode(bytes: file, into: &v2, options: options)
        try out.flush()
        return (memory.take(), target, out)
    }

    static func expectChunked(_ r: (whole: [UInt8], target: RecordingTarget, out: OutputBuffer), slack: Int) {
        #expect(r.whole.count > 10 * chunk)
        #expect(r.target.bytes == r.whole)
        // Each write is at most the threshold plus one command or element past it.
        #expect(r.target.largestWrite < chunk + slack)
        #expect(r.target.writes > r.whole.count / (chunk + slack))
        #expect(!r.out.keepsPartOfKey)
    }

    @Test func respKeysAreWrittenInBoundedParts() throws {
        let r = try Self.render(Self.bigKeys()) { RESPWriter(out: $0, options: RESPWriterOptions(maxElementsPerCommand: 100)) }
        Self.expectChunked(r, slack: 16 << 10)
        // Parts end between commands.
        let commands = try parseRESPCommands(r.target.bytes)
        #expect(commands.count == 1 + 1 + 400 + 1 + 200 + 1)
    }

    @Test func jsonKeysAreWrittenInBoundedParts() throws {
        Self.expectChunked(try Self.render(Self.bigKeys()) { JSONLWriter(out: $0) }, slack: 256)
        Self.expectChunked(try Self.render(Self.bigKeys()) { JSONWriter(out: $0) }, slack: 256)
    }

    @Test func restoreCommandsAreWrittenInBoundedParts() throws {
        // A Valkey HASH_2 with field TTLs, for Redis 7.4 (RDB 12): written as HSET + HPEXPIREAT commands.
        var v = RDBBuilder(version: 80, family: .valkey)
        var hash = RDBBuilder.length(20_000)
        for i in 0..<20_000 {
            hash += RDBBuilder.string("field-\(i)") + RDBBuilder.string("value-\(i)") + RDBBuilder.le(Int64(4_000_000_000_000))
        }
        v.key(type: 22, "ttl:hash", value: hash)
        let r = try Self.render(v.finished()) { RestoreWriter(out: $0, options: RestoreWriterOptions(targetVersion: 12)) }
        Self.expectChunked(r, slack: 32 << 10)
        let commands = try respText(r.target.bytes)
        #expect(commands.count == 1 + 40 + 40)
        #expect(commands.last?.hasPrefix("HPEXPIREAT ttl:hash 4000000000000 FIELDS 32 ") == true)
    }

    @Test func largeRestorePayloadsGoOutWithoutACopy() throws {
        var b = RDBBuilder(version: 10)
        var list = RDBBuilder.length(40_000)
        for i in 0..<40_000 { list += RDBBuilder.string("element-\(i)") }
        b.key(type: 0, "a", value: RDBBuilder.string("1"))
        b.key(type: 1, "big:list", value: list, expireMs: 1_900_000_000_000)
        b.key(type: 0, "z", value: RDBBuilder.string("2"))
        let file = b.finished()
        let r = try Self.render(file) { RestoreWriter(out: $0, options: RestoreWriterOptions(targetVersion: 10)) }
        #expect(r.target.bytes == r.whole)
        // The value's bytes are one write of their own, straight from the input.
        #expect(r.target.writeSizes.contains(list.count))
        let cmds = try parseRESPCommands(r.target.bytes)
        #expect(cmds.count == 4)
        #expect(DumpPayload.parse(cmds[2][3])?.value == list)
        let kept = try Self.render(file, keepWholeKeys: true) { RestoreWriter(out: $0, options: RestoreWriterOptions(targetVersion: 10)) }
        #expect(kept.target.bytes == r.whole)
        #expect(!kept.target.writeSizes.contains(list.count))
    }

    @Test func largeReencodedPayloadsMatch() throws {
        // A quicklist (RDB 10) for a Redis 6.2 target: re-encoded as a plain list.
        var b = RDBBuilder(version: 10)
        let lp = RDBBuilder.listpack((0..<20_000).map { RDBBuilder.lpString("element-\($0)") })
        b.key(type: 18, "ql", value: RDBBuilder.length(1) + RDBBuilder.length(2) + RDBBuilder.string(lp))
        let r = try Self.render(b.finished()) { RestoreWriter(out: $0, options: RestoreWriterOptions(targetVersion: 9)) }
        #expect(r.target.bytes == r.whole)
        #expect(r.target.writes >= 3)
        let cmds = try parseRESPCommands(r.target.bytes)
        #expect(DumpPayload.parse(cmds[1][3])?.type == 1)
    }

    @Test func keptWholeKeysAreOneWrite() throws {
        let r = try Self.render(Self.bigKeys(), keepWholeKeys: true) { JSONLWriter(out: $0) }
        #expect(r.target.bytes == r.whole)
        // The list's line is written in one piece.
        let listLine = r.whole.split(separator: 0x0A)[1].count
        #expect(r.target.largestWrite >= listLine)
    }

    /// A listpack hash of 8,000 fields whose last entry claims more bytes than the blob holds (framing
    /// intact, so salvage goes on with the next key), between two good keys.
    static func corruptBigKey() -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "a", value: RDBBuilder.string("1"))
        var lp: [[UInt8]] = []
        for i in 0..<8_000 { lp += [RDBBuilder.lpString("field-\(i)"), RDBBuilder.lpString("value-\(i)-0123456789")] }
        lp += [RDBBuilder.lpString("f"), [0x80 | 40, 0x61, 0x02]]
        b.key(type: 16, "broken", value: RDBBuilder.string(RDBBuilder.listpack(lp)))
        b.key(type: 0, "c", value: RDBBuilder.string("3"))
        return b.finished()
    }

    @Test func salvageKeepsKeysWholeAndDropsACorruptOne() throws {
        var o = RDBDecoderOptions()
        o.salvage = true
        let jsonl = try Self.render(Self.corruptBigKey(), keepWholeKeys: true, options: o) { JSONLWriter(out: $0) }
        #expect(jsonl.target.string == """
            {"db":0,"key":"a","type":"string","expire_at_ms":null,"value":"1"}
            {"db":0,"key":"c","type":"string","expire_at_ms":null,"value":"3"}

            """)
        let resp = try Self.render(Self.corruptBigKey(), keepWholeKeys: true, options: o) { RESPWriter(out: $0) }
        #expect(try respText(resp.target.bytes) == ["SELECT 0", "SET a 1", "SET c 3"])
        // Without keepsWholeKeys the start of the corrupt key is already out when it fails.
        let chunked = try Self.render(Self.corruptBigKey(), options: o) { JSONLWriter(out: $0) }
        #expect(chunked.target.string.contains("\"key\":\"broken\""))
    }
}

/// `OutputBuffer.append` copies short byte strings inline (overlapping loads and stores, blocks of 32 up to 256
/// bytes) and longer ones with memcpy: every length from 0 to 300, at every alignment of source and destination
/// within 32 bytes, gives exactly the bytes, and writes nothing past them.
@Suite struct OutputCopyTests {
    @Test func everyLengthAndAlignment() throws {
        var source = [UInt8](repeating: 0, count: 400)
        for i in source.indices { source[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
        for length in 0...300 {
            for from in [0, 1, 7, 31] {
                for to in [0, 3, 17] {
                    let out = OutputBuffer(target: nil)
                    for _ in 0..<to { out.append(UInt8(0xEE)) }
                    let before = out.pendingCount
                    source.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[from..<from + length])) }
                    out.append(UInt8(0x5A))
                    let bytes = out.take()
                    #expect(before == to)
                    #expect(Array(bytes[to..<to + length]) == Array(source[from..<from + length]), "length \(length) from \(from) to \(to)")
                    #expect(bytes.count == to + length + 1 && bytes.last == 0x5A, "length \(length): bytes after it")
                }
            }
        }
    }
}
