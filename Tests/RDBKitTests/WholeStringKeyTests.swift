import Foundation
import Testing
import RDBKit
import RDBSinks

/// A string key that comes whole (`RDBVisitor.stringKey`, which `RESPWriter` and `RestoreWriter` lay out in
/// one go) is written exactly as its three events (`beginKey`, `stringValue` or `rawValue`, `endKey`) are: the
/// same bytes, counts and key plans, under every writer option that shapes a string's commands.
@Suite struct WholeStringKeyTests {
    /// Passes string keys on whole (`whole`) or hides `stringDelivery` so that they come as events;
    /// records the writer's plan after each key.
    struct PlanRecorder<W: RDBVisitor>: RDBForwardingVisitor {
        var inner: W
        let whole: Bool
        let plan: (W) -> KeyPlan
        var plans: [KeyPlan] = []
        var wholeKeys = 0

        var stringDelivery: RDBStringDelivery { whole ? inner.stringDelivery : .events }
        mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
            try inner.stringKey(key, info, value: value, raw: raw)
            wholeKeys += 1
            plans.append(plan(inner))
        }
        mutating func endKey() throws {
            try inner.endKey()
            plans.append(plan(inner))
        }
    }

    struct Result: Equatable {
        var bytes: [UInt8]
        var plans: [KeyPlan]
        var counts: [Int]
        var error: String?
    }

    static func decode(_ bytes: [UInt8], _ options: RESPWriterOptions, whole: Bool) -> (Result, wholeKeys: Int) {
        decode(bytes, whole: whole) { RESPWriter(out: $0, options: options) } plan: { $0.keyPlan } counts: {
            [$0.keysWritten, $0.commandsWritten, $0.skippedKeys.count, $0.lossyKeys.count]
        }
    }

    static func decode(_ bytes: [UInt8], _ options: RestoreWriterOptions, whole: Bool) -> (Result, wholeKeys: Int) {
        decode(bytes, whole: whole) { RestoreWriter(out: $0, options: options) } plan: { $0.keyPlan } counts: {
            [$0.stats.passedThrough, $0.stats.reencoded, $0.stats.asCommands, $0.stats.skipped, $0.skippedKeys.count, $0.lossyKeys.count]
        }
    }

    static func decode<W: RDBVisitor>(_ bytes: [UInt8], whole: Bool, writer: (OutputBuffer) -> W, plan: @escaping (W) -> KeyPlan,
                                      counts: (W) -> [Int]) -> (Result, wholeKeys: Int) {
        let target = MemoryTarget()
        let out = OutputBuffer(target: target, flushThreshold: 1 << 10)
        var sink = PlanRecorder(inner: writer(out), whole: whole, plan: plan)
        var failure: String?
        do { _ = try RDBReader.decode(bytes: bytes, into: &sink) } catch { failure = "\(error)" }
        out.rollback()
        try? out.flush()
        return (Result(bytes: target.bytes, plans: sink.plans, counts: counts(sink.inner), error: failure), sink.wholeKeys)
    }

    static let optionSets: [(String, RESPWriterOptions)] = {
        var sets: [(String, RESPWriterOptions)] = [("default", RESPWriterOptions())]
        var o = RESPWriterOptions()
        o.setIfAbsent = true
        sets.append(("NX", o))
        o.inlineExpiry = true
        sets.append(("NX PXAT", o))
        o.setIfAbsent = false
        sets.append(("PXAT", o))
        o.dropTTL = true
        sets.append(("PXAT, no TTL", o))
        o = RESPWriterOptions(dropTTL: true, emitSelect: false)
        sets.append(("no TTL, no SELECT", o))
        o = RESPWriterOptions(targetVersion: 9)
        sets.append(("target 6.2", o))
        return sets
    }()

    static let restoreOptionSets: [(String, RestoreWriterOptions)] = [
        ("restore", RestoreWriterOptions()),
        ("restore, no REPLACE", RestoreWriterOptions(replace: false)),
        ("restore, no TTL, no SELECT", RestoreWriterOptions(dropTTL: true, emitSelect: false)),
        ("restore for 6.2", RestoreWriterOptions(targetVersion: 9)),
    ]

    static func expectSame(_ bytes: [UInt8], _ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
        var wholeKeys = 0
        var runs: [(String, (Bool) -> (Result, wholeKeys: Int))] = []
        for (label, options) in optionSets { runs.append((label, { decode(bytes, options, whole: $0) })) }
        for (label, options) in restoreOptionSets { runs.append((label, { decode(bytes, options, whole: $0) })) }
        for (label, run) in runs {
            let (events, none) = run(false)
            let (whole, n) = run(true)
            #expect(none == 0, sourceLocation: sourceLocation)
            #expect(events.error == whole.error, "\(name) \(label)", sourceLocation: sourceLocation)
            #expect(events.counts == whole.counts, "\(name) \(label)", sourceLocation: sourceLocation)
            #expect(events.plans == whole.plans, "\(name) \(label)", sourceLocation: sourceLocation)
            let at = (0..<min(events.bytes.count, whole.bytes.count)).first { events.bytes[$0] != whole.bytes[$0] } ?? min(events.bytes.count, whole.bytes.count)
            let same = events.bytes == whole.bytes
            #expect(same, "\(name) \(label): \(events.bytes.count) vs \(whole.bytes.count) bytes, first difference at \(at)",
                    sourceLocation: sourceLocation)
            wholeKeys += n
        }
        return wholeKeys
    }

    /// Every server-written fixture and corpus RDB (LZF and integer-encoded strings, expiries, databases).
    @Test func fixturesWriteTheSame() throws {
        let files = ParallelDecodeTests.fixtureFiles()
        #expect(files.count >= 100)
        var wholeKeys = 0
        for f in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
            wholeKeys += Self.expectSame(bytes, f)
        }
        #expect(wholeKeys > 1000)  // the fast path did run
    }

    /// Integer keys and values, empty and long strings, expiries of 0 and before 1970, databases switching.
    @Test func edgeCasesWriteTheSame() {
        var b = RDBBuilder(version: 9)
        b.aux("redis-ver", "6.2.14")
        b.selectDB(0)
        b.key(type: 0, "empty", value: RDBBuilder.string(""))
        b.key(type: 0, "a-key-longer-than-thirty-two-bytes-to-copy", value: RDBBuilder.string(String(repeating: "v", count: 100)))
        b.key(type: 0, "at-zero", value: RDBBuilder.string("x"), expireMs: 0)
        b.key(type: 0, "before-1970", value: RDBBuilder.string("y"), expireMs: -5)
        b.key(type: 0, "later", value: RDBBuilder.string(String(repeating: "w", count: 20_000)), expireMs: 4_102_444_800_000)
        b.bytes += [0, 0xC0, 0x85] + [0xC2] + RDBBuilder.le(Int32.min)  // key -123, value -2147483648
        b.bytes += [0xFC] + RDBBuilder.le(Int64(1_700_000_000_000)) + [0, 0xC1] + RDBBuilder.le(Int16(300)) + [0xC0, 7]
        b.selectDB(5)
        b.key(type: 0, "in-5", value: RDBBuilder.string("z"))
        b.key(type: 2, "a-set", value: [1] + RDBBuilder.string("m"))
        b.key(type: 0, "after-a-set", value: RDBBuilder.string("s"), expireMs: 1)
        b.selectDB(0)
        b.key(type: 0, "back-in-0", value: RDBBuilder.string("t"))
        let n = Self.expectSame(b.finished(), "edge cases")
        #expect(n == 10 * (Self.optionSets.count + Self.restoreOptionSets.count))
    }

    /// A file cut inside a string's value: the error and the output before it are the same.
    @Test func truncatedValueFailsTheSame() {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        b.key(type: 0, "whole", value: RDBBuilder.string("v"))
        b.key(type: 0, "cut", value: RDBBuilder.string(String(repeating: "c", count: 50)))
        let bytes = Array(b.bytes.dropLast(10))
        _ = Self.expectSame(bytes, "truncated")
        let (result, _) = Self.decode(bytes, RESPWriterOptions(), whole: true)
        #expect(result.error != nil)
        #expect(result.counts[0] == 1)
    }
}
