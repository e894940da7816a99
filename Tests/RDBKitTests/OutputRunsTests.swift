import Foundation
import Testing
import RDBKit
@testable import RDBSinks

/// Output formatted in runs on two threads (`OutputRuns`): the same bytes, in order, as formatting each run in
/// turn; an error ends it on both threads.
@Suite struct OutputRunsTests {
    /// Run `r`: lines naming it, more or fewer of them, some runs empty.
    static func format(_ r: Int, _ out: OutputBuffer) throws {
        for i in 0..<(r % 5 == 4 ? 0 : (r % 7 + 1) * 700) {
            out.append("run \(r) line \(i)\n")
            out.commit()
            try out.flushIfNeeded()
        }
    }

    static func expected(_ runs: Int) throws -> [UInt8] {
        let out = OutputBuffer(target: nil)
        for r in 0..<runs { try format(r, out) }
        return out.take()
    }

    @Test(arguments: [0, 1, 2, 3, 41])
    func runsAreWrittenInOrderThroughATarget(runs: Int) throws {
        let target = MemoryTarget()
        let out = OutputBuffer(target: target, flushThreshold: 4096)
        try OutputRuns.write(runs: runs, to: out, Self.format)
        try out.flush()
        let expected = try Self.expected(runs)
        #expect(target.bytes == expected)
        #expect(out.totalBytes == expected.count)
    }

    @Test func runsAreWrittenInOrderIntoABufferWithoutATarget() throws {
        let out = OutputBuffer(target: nil)
        try OutputRuns.write(runs: 41, to: out, Self.format)
        #expect(out.take() == (try Self.expected(41)))
    }

    final class FailingTarget: OutputTarget {
        var writes = 0
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            writes += 1
            if writes == 3 { throw CocoaError(.fileWriteNoPermission) }
        }
    }

    /// The output's target fails (a closed pipe): the error is thrown and the helper thread ends (no hang), on
    /// an even run (this thread) or on handing over an odd one.
    @Test(arguments: [256, 1 << 20])
    func aFailingTargetEndsBothThreads(flushThreshold: Int) throws {
        let out = OutputBuffer(target: FailingTarget(), flushThreshold: flushThreshold)
        #expect(throws: CocoaError.self) { try OutputRuns.write(runs: 41, to: out, Self.format) }
    }

    /// A run whose formatting fails on the helper thread: the error comes out when that run's turn comes, not
    /// before (the helper fails run 5 while this thread still formats run 2), after the runs before it.
    @Test func anErrorFormattingARunOnTheHelperIsThrown() throws {
        struct Bad: Error {}
        let target = MemoryTarget()
        let out = OutputBuffer(target: target)
        #expect(throws: Bad.self) {
            try OutputRuns.write(runs: 9, to: out) { r, o in
                if r == 2 { usleep(50_000) }
                if r == 5 { throw Bad() }
                try Self.format(r, o)
            }
        }
        try out.flush()
        #expect(target.bytes == (try Self.expected(5)))
    }

    /// Each line of the keys report parses as JSON with the key's database, name, count and preamble flag: names
    /// to escape (quotes, backslashes, control bytes, non-ASCII), long ones, base64, large databases and counts.
    @Test(arguments: [BinaryMode.escape, .base64])
    func aofKeysLinesParseBack(binary: BinaryMode) throws {
        let names = ["a", "quote\"d", "back\\slash", "tab\there\n", "é 漢字", String(repeating: "long", count: 40), ""]
        var commands: [[String]] = []
        for (i, name) in names.enumerated() {
            commands.append(["SELECT", "\(i * 1000)"])
            for _ in 0...(i * 300) { commands.append(["INCR", name]) }
        }
        var k = AOFKeys(binary: binary)
        _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
        let out = OutputBuffer(target: nil)
        try k.writeJSONL(to: out)
        let lines = String(decoding: out.take(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == names.count)
        for (i, line) in lines.enumerated() {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let key = try #require(o["key"] as? String)
            #expect(o["db"] as? Int == i * 1000 && o["commands"] as? Int == i * 300 + 1 && o["preamble"] as? Bool == false)
            #expect(binary == .escape ? key == names[i] : Data(base64Encoded: key) == Data(names[i].utf8))
        }
    }

    /// `onTwoCores: false` (`rdbcat --threads 1`): every run is formatted on this thread; `AOFKeys(otherCore:
    /// false)` counts without a worker thread and lists the same lines.
    @Test func oneCoreStaysOnThisThread() throws {
        let me = pthread_self()
        final class Seen: @unchecked Sendable { var elsewhere = 0 }
        let seen = Seen()
        let out = OutputBuffer(target: nil)
        try OutputRuns.write(runs: 9, to: out, onTwoCores: false) { r, o in
            if pthread_equal(pthread_self(), me) == 0 { seen.elsewhere += 1 }
            try Self.format(r, o)
        }
        let expected = try Self.expected(9)
        #expect(seen.elsewhere == 0 && out.take() == expected)
        let commands = (0..<(AOFKeyTable.runKeys * 3)).map { ["SET", "key:\($0 % 20_000)", "v"] }
        func lines(_ otherCore: Bool) throws -> (String, Bool) {
            var k = AOFKeys(otherCore: otherCore)
            _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
            let o = OutputBuffer(target: nil)
            try k.writeJSONL(to: o)
            return (String(decoding: o.take(), as: UTF8.self), k.batches.worker != nil)
        }
        let (one, oneWorker) = try lines(false)
        let (two, twoWorker) = try lines(true)
        #expect(one == two && !oneWorker && twoWorker == (availableCores() > 1))
    }

    /// The keys of an AOF listed in more runs than one: the lines are those of `keys`, in order.
    @Test func aofKeysInManyRunsAreListedInOrder() throws {
        var commands: [[String]] = []
        for i in 0..<(AOFKeyTable.runKeys * 3 + 100) {
            if i % 5000 == 0 { commands.append(["SELECT", "\(i / 5000 % 3)"]) }
            commands.append(["SET", "key:\(i % 20_000)", "v"])
        }
        var k = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
        let target = MemoryTarget()
        let out = OutputBuffer(target: target)
        try k.writeJSONL(to: out)
        let lines = String(decoding: target.bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        let keys = k.keys
        #expect(keys.count > AOFKeyTable.runKeys * 2)
        #expect(lines == keys.map {
            "{\"db\":\($0.key.db),\"key\":\"\(String(decoding: $0.key.key, as: UTF8.self))\",\"commands\":\($0.commands),\"preamble\":false}"
        })
    }
}
