import Testing
import RDBKit
import RDBSinks

/// The streamed decode measures each record before decoding it once (`RDBParser.recordEnd`), and moves
/// straight to the measured end when the visitor skips a value: the same events, offsets, sizes, output and
/// errors as the mapped decode, wherever the window's refills cut the records.
@Suite struct StreamedOnceTests {
    /// Events with every key's offsets and measured size.
    struct Trace: RDBForwardingVisitor {
        var inner = Recorder()
        var infos: [String] = []
        init(action: RDBKeyAction) { inner.action = action }
        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            infos.append("\(key.string) db=\(info.db) record=\(info.recordOffset) value=\(info.valueOffset) size=\(info.valueSize.map(String.init) ?? "-")")
            return try inner.beginKey(key, info)
        }
        mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
            infos.append("dropped \(key.string) record=\(info.recordOffset) size=\(info.valueSize.map(String.init) ?? "-")")
            try inner.droppedEmptyKey(key, info)
        }
    }

    static let fixtures = StreamingTests.fixtures

    static func options(measure: Bool = false) -> RDBDecoderOptions {
        var o = RDBDecoderOptions()
        o.allowNewerVersions = true
        o.measureValues = measure
        return o
    }

    static func trace(_ input: InputBuffer, action: RDBKeyAction, measure: Bool) throws -> [String] {
        var t = Trace(action: action)
        let summary = try RDBReader.decode(input, into: &t, options: options(measure: measure))
        return t.infos + t.inner.events + ["end \(summary.endOffset) \(summary.checksum)"]
    }

    static func output<V: RDBVisitor>(_ input: InputBuffer, _ make: (OutputBuffer) -> V) throws -> [UInt8] {
        let out = OutputBuffer(target: nil)
        var sink = make(out)
        _ = try RDBReader.decode(input, into: &sink, options: options())
        return out.take()
    }

    static func streams(_ bytes: [UInt8], chunks: [Int] = [1, 7, 4096], windows: [Int] = [64]) -> [(String, () -> InputBuffer)] {
        var r: [(String, () -> InputBuffer)] = []
        for chunk in chunks {
            for window in windows {
                r.append(("chunk \(chunk) window \(window)", { InputBuffer(stream: ChunkedArrayStream(bytes, chunk: chunk), chunkSize: window, name: "-") }))
            }
        }
        return r
    }

    @Test(arguments: fixtures)
    func everyKeyActionAsMapped(_ fixture: String) throws {
        let bytes = try Fixtures.bytes(fixture)
        for action in [RDBKeyAction.decode, .skip, .raw] {
            for measure in [false, true] {
                let mapped = try bytes.withUnsafeBytes { try Self.trace(InputBuffer(region: $0), action: action, measure: measure) }
                for (how, input) in Self.streams(bytes) {
                    #expect(try Self.trace(input(), action: action, measure: measure) == mapped, "\(fixture) \(action) measure=\(measure) \(how)")
                }
            }
        }
    }

    @Test(arguments: fixtures)
    func writersAsMapped(_ fixture: String) throws {
        let bytes = try Fixtures.bytes(fixture)
        let makers: [(String, (InputBuffer) throws -> [UInt8])] = [
            ("resp", { try Self.output($0) { RESPWriter(out: $0) } }),
            ("stats", { try Self.output($0) { StatsCollector(out: $0, json: true, now: 0) } }),
            ("keys", { try Self.output($0) { KeysWriter(out: $0) } }),
        ]
        for (name, run) in makers {
            let mapped = try bytes.withUnsafeBytes { try run(InputBuffer(region: $0)) }
            for (how, input) in Self.streams(bytes, chunks: [7, 4096]) {
                #expect(try run(input()) == mapped, "\(fixture) \(name) \(how)")
            }
        }
    }

    /// Keys of every kind of framing (strings short and long, integers, expiries, linked lists, hashes, sorted
    /// sets, sets, listpacks, empty collections dropped, database switches), and values larger than the
    /// window, so that every refill cuts some record somewhere.
    static func straddling(keys: Int = 240, big: Bool = true) -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.aux("redis-ver", "7.0.15")
        b.selectDB(0)
        func strings(_ n: Int, _ prefix: String) -> [UInt8] {
            var v: [UInt8] = []
            for j in 0..<n { v += RDBBuilder.string("\(prefix)\(j)" + String(repeating: "x", count: (j * 7) % 90)) }
            return v
        }
        for i in 0..<keys {
            let k = "key:\(i)"
            let n = 1 + (i * 5) % 23
            switch i % 9 {
            case 0: b.key(type: 0, k, value: RDBBuilder.string(String(repeating: "v", count: (i * 3) % 200)), expireMs: 1_900_000_000_000 + Int64(i))
            case 1: b.key(type: 0, k, value: [0xC1] + RDBBuilder.le(Int16(i * 100)))
            case 2: b.key(type: 1, k, value: RDBBuilder.length(UInt64(n)) + strings(n, "e"))
            case 3: b.key(type: 4, k, value: RDBBuilder.length(UInt64(n)) + strings(2 * n, "f"))
            case 4:
                var v = RDBBuilder.length(UInt64(n))
                for j in 0..<n { v += RDBBuilder.string("m\(j)") + RDBBuilder.le((Double(j) / 4).bitPattern) }
                b.key(type: 5, k, value: v)
            case 5: b.key(type: 16, k, value: RDBBuilder.string(RDBBuilder.listpack((0..<(2 * n)).map { RDBBuilder.lpString("p\($0)") })))
            case 6: b.key(type: 2, k, value: RDBBuilder.length(UInt64(n)) + strings(n, "s"))
            case 7: b.key(type: i % 2 == 0 ? 4 : 1, k, value: [0])  // empty: dropped
            default:
                b.selectDB(UInt64(i % 4))
                b.key(type: 0, k, value: [0xC0, UInt8(i % 128)])
            }
        }
        if big {
            b.key(type: 0, "big:string", value: RDBBuilder.string([UInt8](repeating: 0x62, count: 20_000)))
            b.key(type: 1, "big:list", value: RDBBuilder.length(3000) + strings(3000, "l"))
            b.key(type: 0, "after", value: RDBBuilder.string("the end"))
        }
        return b.finished()
    }

    @Test func recordsStraddlingRefillsAsMapped() throws {
        let bytes = Self.straddling()
        for action in [RDBKeyAction.decode, .skip, .raw] {
            for measure in [false, true] {
                let mapped = try bytes.withUnsafeBytes { try Self.trace(InputBuffer(region: $0), action: action, measure: measure) }
                for (how, input) in Self.streams(bytes, chunks: [1, 3, 64, 1000, 1 << 20], windows: [64, 256, 4096]) {
                    #expect(try Self.trace(input(), action: action, measure: measure) == mapped, "\(action) measure=\(measure) \(how)")
                }
            }
        }
        let jsonl = try bytes.withUnsafeBytes { try Self.output(InputBuffer(region: $0)) { JSONLWriter(out: $0) } }
        let resp = try bytes.withUnsafeBytes { try Self.output(InputBuffer(region: $0)) { RESPWriter(out: $0) } }
        for (how, input) in Self.streams(bytes, chunks: [1, 64, 1000], windows: [64, 256]) {
            #expect(try Self.output(input()) { JSONLWriter(out: $0) } == jsonl, "jsonl \(how)")
            #expect(try Self.output(input()) { RESPWriter(out: $0) } == resp, "resp \(how)")
        }
    }

    static func error(_ input: InputBuffer) -> RDBError? {
        var r = Recorder()
        do {
            _ = try RDBReader.decode(input, into: &r)
            return nil
        } catch let e as RDBError {
            return e
        } catch {
            return RDBError(.io, offset: -1, "unexpected error type \(error)")
        }
    }

    static func same(_ streamed: RDBError?, _ mapped: RDBError?, _ what: String) {
        if let streamed, let mapped, streamed.code == .limitExceeded, mapped.code == .truncated {
            // A length beyond the streaming record limit is refused before anything is buffered (a mapped
            // file finds its end first): the same place, named as the limit.
            #expect(streamed.offset <= mapped.offset, "\(what): \(streamed) vs \(mapped)")
            #expect(streamed.file == "-", "\(what)")
            return
        }
        #expect(streamed?.code == mapped?.code, "\(what): \(String(describing: streamed)) vs \(String(describing: mapped))")
        #expect(streamed?.offset == mapped?.offset, "\(what): \(String(describing: streamed)) vs \(String(describing: mapped))")
        #expect(streamed?.key == mapped?.key, "\(what)")
        #expect(streamed?.message == mapped?.message, "\(what)")
        if let streamed {
            #expect(streamed.file == "-", "\(what): the error names the input")
            #expect(streamed.description.contains("\(streamed.offset)"), "\(what): \(streamed) names its offset")
        }
    }

    @Test func truncatedStreamNamesTheOffset() throws {
        let bytes = Self.straddling(keys: 40, big: false)
        for cut in stride(from: 9, to: bytes.count, by: 5) {
            let part = Array(bytes[0..<cut])
            let mapped = part.withUnsafeBytes { Self.error(InputBuffer(region: $0)) }
            #expect(mapped?.code == .truncated, "cut at \(cut)")
            for (how, input) in Self.streams(part, chunks: [3, 100], windows: [64]) {
                Self.same(Self.error(input()), mapped, "cut at \(cut), \(how)")
            }
        }
    }

    @Test func corruptStreamNamesTheOffset() throws {
        let bytes = Self.straddling(keys: 60, big: false)
        // Every byte in turn made a type byte no version knows, a length prefix that does not exist, or a
        // huge length: whatever the mapped decode says, the streamed one says too (or both decode).
        for at in stride(from: 9, to: bytes.count - 9, by: 3) {
            for bad: UInt8 in [0x77, 0xBF, 0x81] {
                var b = bytes
                b[at] = bad
                let mapped = b.withUnsafeBytes { Self.error(InputBuffer(region: $0)) }
                for (how, input) in Self.streams(b, chunks: [5, 4096], windows: [64]) {
                    Self.same(Self.error(input()), mapped, "0x\(String(bad, radix: 16)) at \(at), \(how)")
                }
            }
        }
    }

    @Test(arguments: FixtureTests.errors)
    func errorFixturesAsMapped(_ errorFile: String) throws {
        let bytes = try Fixtures.bytes(String(errorFile.dropLast(".expected-error.txt".count)))
        let mapped = bytes.withUnsafeBytes { Self.error(InputBuffer(region: $0)) }
        for (how, input) in Self.streams(bytes, chunks: [1, 7, 4096], windows: [64]) {
            Self.same(Self.error(input()), mapped, "\(errorFile) \(how)")
        }
    }
}
