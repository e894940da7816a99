// Micro-benchmarks of the decoder's hot paths (package-benchmark).
//
//     ENABLE_BENCHMARKS=1 swift package benchmark                 # all
//     ENABLE_BENCHMARKS=1 swift package benchmark --filter Listpack
//
// Each iteration walks a whole input of a stated number of elements (see the names), so the
// mallocCountTotal of one iteration is the allocations of that many elements: the hot paths should
// report 0. The inputs are built once, in memory, before the measurements.

import Benchmark
import RDBKit
import RDBSinks

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    // MARK: wire primitives

    Benchmark("ByteCursor: 1000 RDB strings (length prefix + bytes)") { benchmark in
        Inputs.rdbStrings.withUnsafeBytes { buf in
            for _ in benchmark.scaledIterations {
                var c = ByteCursor(buf)
                var total = 0
                while !c.isAtEnd {
                    guard case .length(let n) = try! c.readLengthOrEncoding() else { fatalError("encoded") }
                    total &+= try! c.readBytes(Int(n), "a string").count
                }
                blackHole(total)
            }
        }
    }

    Benchmark("ByteCursor: 1000 lengths (6/14/32-bit)") { benchmark in
        Inputs.lengths.withUnsafeBytes { buf in
            for _ in benchmark.scaledIterations {
                var c = ByteCursor(buf)
                var total: UInt64 = 0
                while !c.isAtEnd { total &+= try! c.readLength() }
                blackHole(total)
            }
        }
    }

    // MARK: compact encodings

    Benchmark("ListpackReader: walk 1000 elements (strings + ints)") { benchmark in
        Inputs.listpack.withUnsafeBytes { blob in
            for _ in benchmark.scaledIterations {
                var r = try! ListpackReader(blob, blobOffset: 0)
                var total = 0
                while let s = try! r.next() { total &+= s.isInteger ? Int(truncatingIfNeeded: s.integer) : s.bytes.count }
                blackHole(total)
            }
        }
    }

    Benchmark("ZiplistReader: walk 1000 entries (strings + ints)") { benchmark in
        Inputs.ziplist.withUnsafeBytes { blob in
            for _ in benchmark.scaledIterations {
                var r = try! ZiplistReader(blob, blobOffset: 0)
                var total = 0
                while let s = try! r.next() { total &+= s.isInteger ? Int(truncatingIfNeeded: s.integer) : s.bytes.count }
                blackHole(total)
            }
        }
    }

    Benchmark("IntsetReader: walk 1000 int32") { benchmark in
        Inputs.intset.withUnsafeBytes { blob in
            for _ in benchmark.scaledIterations {
                var r = try! IntsetReader(blob, blobOffset: 0)
                var total: Int64 = 0
                while let v = try! r.next() { total &+= v }
                blackHole(total)
            }
        }
    }

    // MARK: LZF, CRC64

    // Output buffers for LZF, allocated once (never freed: the process ends after the benchmarks).
    let lzfOutSmall = UnsafeMutableRawBufferPointer.allocate(byteCount: Inputs.lzfSmall.size, alignment: 16)
    let lzfOutLarge = UnsafeMutableRawBufferPointer.allocate(byteCount: Inputs.lzfLarge.size, alignment: 16)
    Benchmark("LZF.decompress: 4 KiB of text (\(Inputs.lzfSmall.compressed.count) B compressed)") { benchmark in
        let (compressed, _) = Inputs.lzfSmall
        let out = lzfOutSmall
        compressed.withUnsafeBytes { input in
            for _ in benchmark.scaledIterations {
                blackHole(LZF.decompress(input, into: out))
            }
        }
    }

    Benchmark("LZF.decompress: 1 MiB of text (\(Inputs.lzfLarge.compressed.count / 1024) KiB compressed)") { benchmark in
        let (compressed, _) = Inputs.lzfLarge
        let out = lzfOutLarge
        compressed.withUnsafeBytes { input in
            for _ in benchmark.scaledIterations {
                blackHole(LZF.decompress(input, into: out))
            }
        }
    }

    Benchmark("CRC64: 1 MiB") { benchmark in
        Inputs.mebibyte.withUnsafeBytes { buf in
            for _ in benchmark.scaledIterations {
                var crc = CRC64()
                crc.update(buf)
                blackHole(crc.value)
            }
        }
    }

    // MARK: writers

    // Buffers are made once, outside the measured closures.
    let jsonOut = OutputBuffer(target: nil, flushThreshold: 1 << 20)
    Benchmark("JSON escaper: 1000 strings, 64 KiB (ASCII, quotes, control bytes, UTF-8)") { benchmark in
        let out = jsonOut
        let strings = Inputs.jsonStrings
        for _ in benchmark.scaledIterations {
            out.truncate(to: 0)
            for s in strings { s.withUnsafeBytes { out.appendJSONEscaped($0) } }
            blackHole(out.pendingCount)
        }
    }

    let respOut = OutputBuffer(target: nil, flushThreshold: 1 << 20)
    // Keys and values are views into one buffer, as the decoder hands them over.
    let respArgs = Inputs.rdbStrings
    Benchmark("RESP encoder: 500 SET commands (key, value, PXAT ms)") { benchmark in
        let out = respOut
        var enc = RESPEncoder(out: out)
        respArgs.withUnsafeBytes { buf in
            var views: [UnsafeRawBufferPointer] = []
            views.reserveCapacity(1000)
            var c = ByteCursor(buf)
            while !c.isAtEnd {
                guard case .length(let n) = try! c.readLengthOrEncoding() else { fatalError() }
                views.append(try! c.readBytes(Int(n), "a string"))
            }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                out.truncate(to: 0)
                var i = 0
                while i + 1 < views.count {
                    enc.begin(maxArguments: 5)
                    enc.argument("SET")
                    enc.argument(views[i])
                    enc.argument(views[i + 1])
                    enc.argument("PXAT")
                    enc.argument(Int64(1_900_000_000_000 + i))
                    enc.end()
                    i += 2
                }
                blackHole(out.pendingCount)
            }
            benchmark.stopMeasurement()
        }
    }

    // MARK: whole decoder

    Benchmark("RDBReader: decode \(Inputs.syntheticKeys) keys in memory (\(Inputs.syntheticRDB.count / 1024) KiB) into a counting sink") { benchmark in
        Inputs.syntheticRDB.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                var sink = CountingSink()
                _ = try! RDBReader.decode(bytes: bytes, into: &sink)
                blackHole(sink.elements)
            }
        }
    }

    Benchmark("RDBReader: decode the same, checksum not verified") { benchmark in
        var options = RDBDecoderOptions()
        options.verifyChecksum = false
        Inputs.syntheticRDB.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                var sink = CountingSink()
                _ = try! RDBReader.decode(bytes: bytes, into: &sink, options: options)
                blackHole(sink.elements)
            }
        }
    }

    if let fixture = Inputs.fixture {
        Benchmark("RDBReader: decode testdata/servers/redis-7.0/mixed.rdb (\(fixture.count / 1024) KiB, every type) into a counting sink") { benchmark in
            fixture.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    var sink = CountingSink()
                    _ = try! RDBReader.decode(bytes: bytes, into: &sink)
                    blackHole(sink.elements)
                }
            }
        }
    }

    let writerOut = OutputBuffer(target: nil, flushThreshold: 1 << 30)
    Benchmark("RESPWriter: decode + encode the synthetic RDB to memory") { benchmark in
        let out = writerOut
        Inputs.syntheticRDB.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                out.truncate(to: 0)
                var w = RESPWriter(out: out)
                _ = try! RDBReader.decode(bytes: bytes, into: &w)
                blackHole(out.pendingCount)
            }
        }
    }

    Benchmark("JSONLWriter: decode + write the synthetic RDB to memory") { benchmark in
        let out = writerOut
        Inputs.syntheticRDB.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                out.truncate(to: 0)
                var w = JSONLWriter(out: out)
                _ = try! RDBReader.decode(bytes: bytes, into: &w)
                blackHole(out.pendingCount)
            }
        }
    }
}

// MARK: inputs (deterministic, built once)

/// A small deterministic generator (SplitMix64), so the inputs are the same on every run.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

enum Inputs {
    static let words: [[UInt8]] = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima user session cart order item price total status"
        .split(separator: " ").map { Array($0.utf8) }

    static func text(_ rng: inout SplitMix64, _ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < n {
            out += words[rng.below(words.count)]
            out.append(0x20)
        }
        return Array(out.prefix(n))
    }

    /// An RDB length field.
    static func length(_ n: Int, into out: inout [UInt8]) {
        if n < 64 {
            out.append(UInt8(n))
        } else if n < 16384 {
            out += [0x40 | UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out.append(0x80)
            withUnsafeBytes(of: UInt32(n).bigEndian) { out += $0 }
        }
    }

    static func string(_ s: [UInt8], into out: inout [UInt8]) {
        length(s.count, into: &out)
        out += s
    }

    /// 1000 strings (8-200 bytes) with their RDB length prefixes.
    static let rdbStrings: [UInt8] = {
        var rng = SplitMix64(state: 1)
        var out: [UInt8] = []
        for i in 0..<1000 { string(text(&rng, i % 10 == 0 ? 200 : 8 + rng.below(40)), into: &out) }
        return out
    }()

    static let lengths: [UInt8] = {
        var rng = SplitMix64(state: 2)
        var out: [UInt8] = []
        for i in 0..<1000 { length(i % 3 == 0 ? rng.below(64) : i % 3 == 1 ? 64 + rng.below(16000) : 20000 + rng.below(1 << 30), into: &out) }
        return out
    }()

    /// A listpack of `count` elements: every other one a short string, the rest integers of all widths.
    static func makeListpack(_ elements: [Element]) -> [UInt8] {
        var body: [UInt8] = []
        for e in elements {
            var entry: [UInt8] = []
            switch e {
            case .string(let s):
                precondition(s.count < 4096)
                if s.count < 64 { entry.append(0x80 | UInt8(s.count)) } else { entry += [0xE0 | UInt8(s.count >> 8), UInt8(s.count & 0xFF)] }
                entry += s
            case .integer(let v):
                if v >= 0 && v < 128 {
                    entry.append(UInt8(v))
                } else if v >= -4096 && v < 4096 {
                    let u = UInt16(bitPattern: Int16(v)) & 0x1FFF
                    entry += [0xC0 | UInt8(u >> 8), UInt8(u & 0xFF)]
                } else if v >= Int64(Int16.min) && v <= Int64(Int16.max) {
                    entry.append(0xF1)
                    withUnsafeBytes(of: Int16(v).littleEndian) { entry += $0 }
                } else if v >= Int64(Int32.min) && v <= Int64(Int32.max) {
                    entry.append(0xF3)
                    withUnsafeBytes(of: Int32(v).littleEndian) { entry += $0 }
                } else {
                    entry.append(0xF4)
                    withUnsafeBytes(of: v.littleEndian) { entry += $0 }
                }
            }
            let l = entry.count
            body += entry
            if l < 128 { body.append(UInt8(l)) } else { body += [UInt8(l >> 7), UInt8(l & 127) | 128] }
        }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt32(6 + body.count + 1).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt16(min(elements.count, 65535)).littleEndian) { out += $0 }
        out += body
        out.append(0xFF)
        return out
    }

    enum Element {
        case string([UInt8])
        case integer(Int64)
    }

    static func mixedElements(_ n: Int, seed: UInt64) -> [Element] {
        var rng = SplitMix64(state: seed)
        return (0..<n).map { i in
            if i % 2 == 0 { return .string(text(&rng, 4 + rng.below(28))) }
            switch i % 8 {
            case 1: return .integer(Int64(rng.below(128)))
            case 3: return .integer(Int64(rng.below(8000)) - 4000)
            case 5: return .integer(Int64(rng.below(1 << 30)) - (1 << 29))
            default: return .integer(Int64(bitPattern: rng.next()))
            }
        }
    }

    static let listpack = makeListpack(mixedElements(1000, seed: 3))

    static let ziplist: [UInt8] = {
        var body: [UInt8] = []
        var prev = 0
        var lastStart = 10
        for e in mixedElements(1000, seed: 4) {
            var entry: [UInt8] = []
            if prev < 254 { entry.append(UInt8(prev)) } else {
                entry.append(0xFE)
                withUnsafeBytes(of: UInt32(prev).littleEndian) { entry += $0 }
            }
            switch e {
            case .string(let s):
                entry.append(UInt8(s.count))  // 00pppppp: < 64 bytes
                entry += s
            case .integer(let v):
                if v >= 0 && v <= 12 {
                    entry.append(0xF1 + UInt8(v))
                } else if v >= Int64(Int8.min) && v <= Int64(Int8.max) {
                    entry += [0xFE, UInt8(bitPattern: Int8(v))]
                } else if v >= Int64(Int16.min) && v <= Int64(Int16.max) {
                    entry.append(0xC0)
                    withUnsafeBytes(of: Int16(v).littleEndian) { entry += $0 }
                } else if v >= Int64(Int32.min) && v <= Int64(Int32.max) {
                    entry.append(0xD0)
                    withUnsafeBytes(of: Int32(v).littleEndian) { entry += $0 }
                } else {
                    entry.append(0xE0)
                    withUnsafeBytes(of: v.littleEndian) { entry += $0 }
                }
            }
            lastStart = 10 + body.count
            body += entry
            prev = entry.count
        }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt32(10 + body.count + 1).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt32(lastStart).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt16(1000).littleEndian) { out += $0 }
        out += body
        out.append(0xFF)
        return out
    }()

    static func makeIntset(_ values: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt32(4).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt32(values.count).littleEndian) { out += $0 }
        for v in values.sorted() { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        return out
    }

    static let intset = makeIntset((0..<1000).map { Int32($0 * 4099 - 2_000_000) })

    static func compress(_ data: [UInt8]) -> (compressed: [UInt8], size: Int) {
        var out = [UInt8](repeating: 0, count: data.count + 64)
        let n = data.withUnsafeBytes { input in out.withUnsafeMutableBytes { LZF.compress(input, into: $0) } }
        precondition(n > 0, "LZF did not compress the benchmark text")
        return (Array(out.prefix(n)), data.count)
    }

    static let lzfSmall: (compressed: [UInt8], size: Int) = {
        var rng = SplitMix64(state: 5)
        return compress(text(&rng, 4096))
    }()

    static let lzfLarge: (compressed: [UInt8], size: Int) = {
        var rng = SplitMix64(state: 6)
        return compress(text(&rng, 1 << 20))
    }()

    static let mebibyte: [UInt8] = {
        var rng = SplitMix64(state: 7)
        return (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }()

    static let jsonStrings: [[UInt8]] = {
        var rng = SplitMix64(state: 8)
        return (0..<1000).map { i in
            var s = text(&rng, 64)
            switch i % 4 {
            case 1: s[10] = 0x22; s[20] = 0x5C  // quote, backslash
            case 2: s[5] = 0x0A; s[30] = 0x01  // newline, control byte
            case 3: s.replaceSubrange(40..<46, with: Array("héllo".utf8))  // UTF-8
            default: break
            }
            return s
        }
    }()

    // MARK: a synthetic RDB, as Redis 7.0 writes it

    static let syntheticKeys = 8000

    static let syntheticRDB: [UInt8] = {
        var rng = SplitMix64(state: 9)
        var out = Array("REDIS0010".utf8)
        out.append(0xFA)
        string(Array("redis-ver".utf8), into: &out)
        string(Array("7.0.15".utf8), into: &out)
        out += [0xFE, 0x00, 0xFB]
        length(syntheticKeys, into: &out)
        length(0, into: &out)
        for i in 0..<syntheticKeys {
            let key = Array("key:\(i)".utf8)
            switch i % 8 {
            case 0, 1, 2:  // short string
                out.append(0)
                string(key, into: &out)
                string(text(&rng, 5 + rng.below(15)), into: &out)
            case 3:  // int-encoded string
                out.append(0)
                string(key, into: &out)
                out.append(0xC2)
                withUnsafeBytes(of: Int32(rng.below(1 << 30)).littleEndian) { out += $0 }
            case 4:  // LZF string
                out.append(0)
                string(key, into: &out)
                let (c, n) = compress(text(&rng, 200))
                out.append(0xC3)
                length(c.count, into: &out)
                length(n, into: &out)
                out += c
            case 5:  // hash as listpack (type 16), 10 fields
                out.append(16)
                string(key, into: &out)
                string(makeListpack(mixedElements(20, seed: UInt64(i))), into: &out)
            case 6:  // set as intset (type 11)
                out.append(11)
                string(key, into: &out)
                string(makeIntset((0..<20).map { Int32($0 * 7 + i) }), into: &out)
            default:  // list as quicklist 2 (type 18), one packed node
                out.append(18)
                string(key, into: &out)
                length(1, into: &out)
                length(2, into: &out)
                string(makeListpack(mixedElements(16, seed: UInt64(i) + 1)), into: &out)
            }
        }
        out.append(0xFF)
        let crc = CRC64.checksum(out)
        withUnsafeBytes(of: crc.littleEndian) { out += $0 }
        return out
    }()

    /// A server-written fixture, when the repository's testdata is next to this file.
    static let fixture: [UInt8]? = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        path += "/testdata/servers/redis-7.0/mixed.rdb"
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }()
}
