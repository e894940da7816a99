import Foundation
import Testing
@testable import RDBKit
@testable import RDBSinks

/// A multi-part set read on two cores (`AOFReadAhead`: this thread up to a cut near the middle of the set's
/// bytes, the other thread the rest of the file the cut falls in and then each later file, in pieces this thread
/// takes from the end when it would wait) gives its sink the same events, summaries and warnings (or the same
/// error) as read one file after another.
@Suite struct AOFReadAheadTests {
    let random = AOFSplitTests()

    /// A folder holding a manifest, a BASE and INCR files (names as the server writes them).
    func makeSet(base: [UInt8], rdbBase: Bool = false, incrs: [[UInt8]]) throws -> TempDir {
        let tmp = try TempDir()
        let baseName = "appendonly.aof.1.base." + (rdbBase ? "rdb" : "aof")
        try tmp.write(baseName, base)
        var manifest = "file \(baseName) seq 1 type b\n"
        for (i, incr) in incrs.enumerated() {
            try tmp.write("appendonly.aof.\(i + 1).incr.aof", incr)
            manifest += "file appendonly.aof.\(i + 1).incr.aof seq \(i + 1) type i\n"
        }
        try tmp.write("appendonly.aof.manifest", Array(manifest.utf8))
        return tmp
    }

    /// Every event and each file's summary, or the error; with the parts made and merged.
    func read(_ path: String, ahead: Bool, strict: Bool = false, slowParts: Bool = false) -> (outcome: String, merges: Int, parts: Int) {
        var options = AOFOptions()
        options.strict = strict
        options.splitMinimumBytes = ahead ? 64 : 0
        var r = AOFRecorder()
        r.takesParts = true
        r.partDelay = slowParts ? 20 : 0
        do {
            let s = try AOFReader.decode(path: path, into: &r, options: options)
            let files = s.files.map { f in
                "\((f.name as NSString).lastPathComponent) \(f.kind) rdb=\(f.rdb?.endOffset ?? -1) commands=\(f.commands) "
                    + "annotations=\(f.annotations) valid=\(f.validBytes) tail=\(f.droppedTailOffset ?? -1)+\(f.droppedTailBytes)"
            }
            return ((r.events + files + ["warnings=\(s.warnings)"]).joined(separator: "\n"), r.merges, r.parts)
        } catch {
            return ("error: \(error)", r.merges, r.parts)
        }
    }

    /// Reads the set both ways; they must agree. Returns how many parts were merged.
    @discardableResult
    func agree(_ path: String, strict: Bool = false, slowParts: Bool = false, _ comment: Comment? = nil) -> Int {
        let one = read(path, ahead: false, strict: strict)
        let two = read(path, ahead: true, strict: strict, slowParts: slowParts)
        #expect(one.parts == 0 && one.merges == 0)
        #expect(one.outcome == two.outcome, comment)
        return two.merges
    }

    @Test func randomSetsReadTheSameAhead() throws {
        var merged = 0
        for seed in 0..<24 as Range<UInt64> {
            // Sizes such that the middle falls in the BASE, in an INCR, or near a file's end.
            let base = random.commands(seed: seed, count: 50 + Int(seed % 4) * 150)
            let incrs = (0..<(1 + Int(seed % 3))).map { random.commands(seed: seed &* 31 &+ UInt64($0), count: 60 + $0 * 90) }
            let set = try makeSet(base: base, incrs: incrs)
            merged += agree(set.path, "seed \(seed)") > 0 ? 1 : 0
        }
        #expect(merged >= 16)
    }

    @Test func aLargeRDBBaseIsReadBesideTheINCRFiles() throws {
        // The middle falls inside the RDB BASE: it is read here, and the INCR files whole on the other thread.
        var b = RDBBuilder(version: 10)
        b.aux("aof-base", "1")
        b.selectDB(2)
        for i in 0..<3000 { b.key(type: 0, "base:\(i)", value: RDBBuilder.string("value \(i)")) }
        let incrs = [
            respAll([["SET", "base:1", "x"], ["SELECT", "4"], ["SET", "a", "1"]]) + random.commands(seed: 5, count: 300),
            random.commands(seed: 6, count: 200),
        ]
        let set = try makeSet(base: b.finished(), rdbBase: true, incrs: incrs)
        let two = read(set.path, ahead: true)
        #expect(two.parts >= 3 && two.merges >= 2)  // two files, in pieces of 4 KiB
        #expect(two.outcome.contains("appendonly.aof.1.base.rdb base rdb=") && two.outcome.contains("key db=2 base:2999"))
        #expect(agree(set.path) >= 2)
        // The sink is told, after the BASE, of the bytes of commands it will be given: the INCR files' as well.
        var options = AOFOptions()
        options.splitMinimumBytes = 64
        var r = AOFRecorder()
        r.takesParts = true
        _ = try AOFReader.decode(path: set.path, into: &r, options: options)
        let base = b.finished().count
        #expect(r.hints == [base..<(base + incrs[0].count + incrs[1].count)])
        // The keys sink: the same keys, counts, order and databases.
        func keys(_ ahead: Bool) throws -> String {
            var options = AOFOptions()
            options.splitMinimumBytes = ahead ? 64 : 0
            var k = AOFKeys()
            _ = try AOFReader.decode(path: set.path, into: &k, options: options)
            #expect(ahead ? k.mergedParts >= 2 : k.mergedParts == 0)
            let out = OutputBuffer(target: nil)
            try k.writeJSONL(to: out)
            return String(decoding: out.take(), as: UTF8.self)
        }
        let one = try keys(false)
        #expect(one.contains("{\"db\":2,\"key\":\"base:1\",\"commands\":0,\"preamble\":true}") && one.contains("{\"db\":0,\"key\":\"base:1\",\"commands\":1,\"preamble\":false}"))
        #expect(one.contains("{\"db\":4,\"key\":\"a\","))
        #expect(try keys(true) == one)
    }

    @Test func tornTailsAndErrorsInFilesReadAheadAreTheSame() throws {
        let base = random.commands(seed: 41, count: 200, blocks: false)
        let last = random.commands(seed: 42, count: 300, blocks: false)
        // The last file cut anywhere: a dropped torn tail (or, strict, an error), found by the other thread.
        for cut in stride(from: last.count - 1, to: last.count / 2, by: -211) {
            let set = try makeSet(base: base, incrs: [random.commands(seed: 43, count: 100), Array(last[..<cut])])
            agree(set.path, "cut at \(cut)")
            agree(set.path, strict: true, "strict, cut at \(cut)")
        }
        // A torn tail in a file that is not the last: an error either way.
        let torn = try makeSet(base: base, incrs: [Array(last.dropLast(3)), random.commands(seed: 44, count: 100)])
        #expect(read(torn.path, ahead: false).outcome.hasPrefix("error:"))
        agree(torn.path)
        // A bad byte in a file read whole on the other thread: the same error, naming the file and the byte.
        var bad = last
        let star = bad[(bad.count / 2)...].firstIndex(of: 0x2A)!
        bad[star] = 0x40
        let set = try makeSet(base: base + base, incrs: [bad])
        let one = read(set.path, ahead: false).outcome
        #expect(one.hasPrefix("error:") && one.contains("\(star)") && one.contains("appendonly.aof.1.incr.aof"))
        agree(set.path)
        let two = read(set.path, ahead: true)
        #expect(two.parts >= 1 && two.merges < two.parts)  // the whole file's part met the error, not merged
    }

    @Test func aFileWhosePartGivesUpIsReadHere() throws {
        // A stats sink with room for 8 names: the INCR file, read whole on the other thread, names 12 and gives
        // up; this thread reads it (counting the last names under "(other)").
        let base = respAll((0..<400).map { ["A\($0 % 4)", "k"] })
        let incr = respAll((0..<300).map { ["B\($0 % 12)", "k"] })
        let set = try makeSet(base: base, incrs: [incr])
        func stats(_ ahead: Bool, maxNames: Int) throws -> (String, Int) {
            var options = AOFOptions()
            options.splitMinimumBytes = ahead ? 64 : 0
            var st = AOFStats()
            st.maxNames = maxNames
            _ = try AOFReader.decode(path: set.path, into: &st, options: options)
            let out = OutputBuffer(target: nil)
            try st.write(to: out)
            return (String(decoding: out.take(), as: UTF8.self), st.mergedParts)
        }
        for room in [8, 100] {
            let (one, _) = try stats(false, maxNames: room)
            let (two, merged) = try stats(true, maxNames: room)
            #expect(two == one, "room \(room)")
            #expect(one.contains("(other)") == (room == 8))
            // With room for 100, the BASE's second part and the INCR file are merged; with 8, only the first.
            #expect(merged == (room == 8 ? 1 : 2), "room \(room)")
        }
    }

    @Test func piecesTakenByThisThreadAreMergedInOrder() throws {
        // An INCR of long MULTI blocks and of values holding fake commands, in pieces of 4 KiB, read on the other
        // thread into a slow sink: this thread, done with its part, reads the last pieces meanwhile. A piece starts
        // at a MULTI as the server writes it when one follows its guessed start; blocks opened by a hand-written
        // `multi` are not found so, and a piece whose guessed start is inside one (or inside a value) is read over
        // by the piece before it.
        func blocks(_ multi: String) -> [UInt8] {
            var out: [UInt8] = []
            for b in 0..<40 {
                out += resp([multi]) + respAll((0..<30).map { ["SET", "\(multi)\(b):\($0)", "1"] }) + resp(["EXEC"])
                out += resp(["SET", "v\(b)", "x\r\n*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$2\r\n" + String(repeating: "y", count: 300)])
                if b % 10 == 9 { out += resp(["SELECT", "\(b / 10)"]) }
            }
            return out
        }
        let base = respAll((0..<2500).map { ["SET", "a\($0)", "1"] })  // the cut in the BASE: the INCR in pieces
        for multi in ["MULTI", "multi"] {
            let set = try makeSet(base: base, incrs: [blocks(multi)])
            #expect(read(set.path, ahead: true).parts > 9, "\(multi)")
            agree(set.path, "\(multi)")
            let slow = read(set.path, ahead: true, slowParts: true)
            if multi == "MULTI" {
                #expect(slow.merges > 3, "pieces taken here")
            } else {
                #expect(slow.merges < slow.parts - 5, "pieces starting inside a block")
            }
            agree(set.path, slowParts: true, "\(multi)")
        }
    }

    @Test func theThreadReadsOnIntoPartsNobodyHasTaken() throws {
        final class Log: @unchecked Sendable {
            var reader: AOFPartReader?
            var claims: [Bool] = []
            var ran: [Int] = []
        }
        let log = Log()
        let reads: [() -> Void] = (0..<5).map { i in
            {
                log.ran.append(i)
                // Part 0 reads on into parts 1 and 2; part 3 is read as a part of its own; part 4 was taken.
                if i == 0 { log.claims = [1, 2].map { log.reader!.claim($0) } }
                if i == 3 { log.claims.append(log.reader!.claim(4)) }
            }
        }
        let reader = AOFPartReader(reads: reads)
        log.reader = reader
        _ = reader.next(fromTheEnd: true)  // part 4, taken by a waiting thread (not read here)
        reader.finished(4)
        #expect(reader.begin())
        reader.join()
        #expect(log.ran == [0, 3])
        #expect(log.claims == [true, true, false])
        #expect(reader.done == [true, false, false, true, true])
    }

    @Test func aWaitingThreadReadsThePartsNobodyHasTakenLastFirst() throws {
        final class Log: @unchecked Sendable {
            let monitor = Monitor()
            var ran: [(part: Int, here: Bool)] = []
            var released = false
        }
        let log = Log()
        let waiting = pthread_self()
        let reads: [() -> Void] = (0..<6).map { i in
            {
                let here = pthread_equal(pthread_self(), waiting) != 0
                // The thread's first part lasts until the waiting thread has read the others (part 1 last).
                if i == 0 { log.monitor.withLock { log.monitor.wait { log.released } } }
                log.monitor.withLock {
                    log.ran.append((i, here))
                    if i == 1 { log.released = true }
                }
                log.monitor.broadcast()
            }
        }
        let reader = AOFPartReader(reads: reads)
        #expect(reader.begin())
        while reader.monitor.withLock({ reader.taken }) == 0 { usleep(100) }
        reader.wait(for: 0)
        reader.join()
        #expect(log.ran.map(\.part) == [5, 4, 3, 2, 1, 0])
        #expect(log.ran.map(\.here) == [true, true, true, true, true, false])
        #expect(reader.reads.isEmpty)  // the reads (which hold the parts, which hold the reader) are let go
    }
}
