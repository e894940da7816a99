import Foundation
import Testing
import RDBKit
@testable import RDBSinks

/// A mapped AOF read in two parts on two threads (`AOFOptions.splitMinimumBytes`) gives its sink the same
/// commands, annotations, databases, offsets, summary and warnings (or the same error) as read in one pass:
/// the part starts at a guessed command boundary that values are made to fake, in a database and MULTI block
/// it cannot know.
@Suite struct AOFSplitTests {
    /// What a read gave: every event in order and the summary, or the error.
    func read(_ bytes: [UInt8], split: Bool, strict: Bool = false, pieceBytes: Int? = nil, partDelay: UInt32 = 0)
        -> (outcome: String, merges: Int, parts: Int) {
        var options = AOFOptions()
        options.strict = strict
        options.splitMinimumBytes = split ? 64 : 0
        options.splitPieceBytes = pieceBytes
        var r = AOFRecorder()
        r.takesParts = true
        r.partDelay = partDelay
        do {
            let s = try AOFReader.decode(bytes: bytes, into: &r, options: options)
            let f = s.files[0]
            let summary = "commands=\(f.commands) annotations=\(f.annotations) valid=\(f.validBytes) "
                + "tail=\(f.droppedTailOffset ?? -1)+\(f.droppedTailBytes) warnings=\(s.warnings)"
            return ((r.events + [summary]).joined(separator: "\n"), r.merges, r.parts)
        } catch {
            return ("error: \(error)", r.merges, r.parts)
        }
    }

    /// Random commands: SET with values that hold whole fake commands (`\r\n*3\r\n$3\r\nSET...`), HSET, DEL of
    /// several keys, SELECT, MULTI blocks, EXEC outside a block, annotations and inline commands.
    func commands(seed: UInt64, count: Int, blocks: Bool = true) -> [UInt8] {
        var rng = LZFTests.SplitMix(state: seed)
        var out: [UInt8] = []
        var inBlock = 0
        for i in 0..<count {
            switch rng.next() % 12 {
            case 0: out += resp(["SELECT", "\(rng.next() % 16)"])
            case 1 where blocks && inBlock == 0:
                out += resp(["MULTI"])
                inBlock = 1 + Int(rng.next() % 6)
            case 2: out += resp(["DEL", "k\(rng.next() % 50)", "k\(rng.next() % 50)"])
            case 3: out += Array("#TS:\(1_700_000_000 + i)\r\n".utf8)
            case 4 where inBlock == 0: out += Array("set inline:\(rng.next() % 50) \"a b\"\r\n".utf8)
            case 5: out += resp(["HSET", "h\(rng.next() % 20)", "f", String(repeating: "x", count: Int(rng.next() % 40))])
            default:
                let fake = "\r\n*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$\(rng.next() % 100)\r\n"
                out += resp(["SET", "k\(rng.next() % 50)", fake + String(repeating: "v", count: Int(rng.next() % 30))])
            }
            if inBlock > 0 {
                inBlock -= 1
                if inBlock == 0 { out += resp([rng.next() % 5 == 0 ? "DISCARD" : "EXEC"]) }
            }
        }
        if inBlock > 0 { out += resp(["EXEC"]) }
        return out
    }

    /// Reads `bytes` both ways; they must agree. Returns whether the split was used.
    @discardableResult
    func agree(_ bytes: [UInt8], strict: Bool = false, _ comment: Comment? = nil) -> Bool {
        let one = read(bytes, split: false, strict: strict)
        let two = read(bytes, split: true, strict: strict)
        #expect(one.merges == 0)
        #expect(one.outcome == two.outcome, comment)
        return two.merges > 0
    }

    @Test func randomFilesReadTheSameInTwoParts() throws {
        var merged = 0
        for seed in 0..<40 as Range<UInt64> {
            if agree(commands(seed: seed, count: 200 + Int(seed) * 7), "seed \(seed)") { merged += 1 }
        }
        // Most guesses are right (a few start inside a value, or inside a block, and are read on instead).
        #expect(merged >= 20)
    }

    /// The same random files with a slow part thread: this thread takes the last pieces (fake commands in values,
    /// MULTI blocks and SELECTs across where they start), and the events are the same; cut short too, the same
    /// torn tail (or strict, error).
    @Test func randomFilesReadTheSameWhenPiecesAreTaken() throws {
        var taken = 0
        for seed in 0..<40 as Range<UInt64> {
            let bytes = commands(seed: seed, count: 200 + Int(seed) * 7)
            let one = read(bytes, split: false)
            let two = read(bytes, split: true, partDelay: 100)
            #expect(two.outcome == one.outcome, "seed \(seed)")
            if two.merges > 1 { taken += 1 }
            // Torn in the last piece (dropped, or strict, an error), which this thread may be the one to read.
            let torn = Array(bytes[..<(bytes.count - 1 - Int(seed) * 13)])
            for strict in [false, true] {
                #expect(read(torn, split: true, strict: strict, partDelay: 100).outcome == read(torn, split: false, strict: strict).outcome,
                        "seed \(seed), torn, strict \(strict)")
            }
        }
        #expect(taken >= 10, "pieces taken in \(taken) of 40 files")
    }

    @Test func aBlockAcrossThePartsComesInOrder() throws {
        // A MULTI block from before the middle to after it, with a SELECT before it: the part starts inside it
        // in a database it does not know.
        let head = respAll([["SELECT", "7"], ["SET", "a", "1"]]) + resp(["MULTI"])
        let block = respAll((0..<40).map { ["SET", "b\($0)", "2"] })
        let tail = respAll([["EXEC"], ["DEL", "a"], ["SELECT", "3"], ["SET", "c", "3"]])
        let across = agree(head + block + tail)
        #expect(across)
        // The same block never closed (the file ends inside it): not usable, read on; a torn tail either way.
        agree(head + block)
        #expect(read(head + block, split: true).outcome.contains("ends inside a MULTI block"))
        // EXEC without a block in the part, with no block open where it starts: a plain command both ways.
        let unmatched = agree(respAll((0..<40).map { ["SET", "x\($0)", "1"] }) + resp(["EXEC"]) + respAll([["SET", "y", "2"]]))
        #expect(unmatched)
    }

    @Test func tornTailsAndErrorsAreTheSame() throws {
        let file = commands(seed: 99, count: 300, blocks: false)
        // Cut anywhere in the last part: a dropped torn tail (or, strict, an error) found by the part.
        for cut in stride(from: file.count - 1, to: file.count * 3 / 4, by: -37) {
            agree(Array(file[..<cut]), "cut at \(cut)")
            agree(Array(file[..<cut]), strict: true, "strict, cut at \(cut)")
        }
        // A bad byte after the middle: the same error, at the same byte.
        var bad = file
        let at = file.count * 3 / 4
        let star = bad[at...].firstIndex(of: 0x2A)!
        bad[star] = 0x40
        let one = read(bad, split: false).outcome
        #expect(one.hasPrefix("error:") && one.contains("\(star)"))
        agree(bad)
        let two = read(bad, split: true)
        #expect(two.parts >= 1 && two.merges < two.parts)  // a part read it and met the error: not merged
        let whole = read(bad, split: true, pieceBytes: .max)
        #expect(whole.outcome == one && whole.parts == 1 && whole.merges == 0)  // the part after the middle, in one piece
    }

    /// The part after the middle is read in pieces: when its thread is slow, this one reads the last pieces
    /// (each into a sink of its own, merged in order after the part), and the events are the same.
    @Test func theWaitingThreadReadsTheLastPieces() throws {
        // Commands without fake ones in their values, so that the part starts where the guess says.
        let file = respAll((0..<1200).map { i in i % 97 == 0 ? ["SELECT", "\(i % 16)"] : ["SET", "k\(i % 300)", "v\(i)"] })
        let one = read(file, split: false)
        let two = read(file, split: true, partDelay: 200)
        #expect(two.outcome == one.outcome)
        #expect(two.parts > 2 && two.merges > 1, "parts \(two.parts), merged \(two.merges)")
    }

    @Test func keysOfAFileReadInTwoPartsAreTheSame() throws {
        // The keys sink merges the part's table after its own: the same keys, counts, order and databases.
        var bytes: [UInt8] = []
        for seed in 0..<6 as Range<UInt64> { bytes += commands(seed: seed, count: 400) }
        func keys(_ split: Bool) throws -> String {
            var options = AOFOptions()
            options.splitMinimumBytes = split ? 64 : 0
            var k = AOFKeys()
            _ = try AOFReader.decode(bytes: bytes, into: &k, options: options)
            let out = OutputBuffer(target: nil)
            try k.writeJSONL(to: out)
            #expect(split ? k.mergedParts >= 1 : k.mergedParts == 0)
            return String(decoding: out.take(), as: UTF8.self)
        }
        let one = try keys(false)
        #expect(one.contains("\"db\":15") && one.split(separator: "\n").count > 100)
        #expect(try keys(true) == one)
    }
}

extension AOFSplitTests {
    /// Parts of tens of thousands of keys, merged on two cores (each thread taking half the part's keys, those
    /// the first part has counted there, the rest appended) when the part's keys are all different, one by one
    /// when it holds keys of database -1 and of a database it selects (the same key, perhaps); then a second
    /// file counted into the same table, naming keys of both parts. The same keys, order and counts as one pass.
    /// With long names, both tables' entries are mapped (over 2 MiB), and the part's pages are moved, not copied.
    /// (The part is read in one piece here, so that what is merged is known.)
    @Test(arguments: [(false, false), (true, false), (false, true)])
    func largePartsMergeTheSame(selectInPart: Bool, longNames: Bool) throws {
        let n = AOFKeyTable.runKeys * 3
        let pad = longNames ? String(repeating: "x", count: 70) : ""
        func key(_ i: Int) -> String { "key:\(i)" + pad }
        func new(_ i: Int) -> String { "new:\(i)" + pad }
        var first: [[String]] = [["SELECT", "3"]]
        for i in 0..<n { first.append(["SET", key(i), "v"]) }
        var second: [[String]] = []
        for i in 0..<n {
            second.append(["INCR", i % 2 == 0 ? key(i) : new(i)])  // half named in the first part
            if selectInPart && i == n / 2 { second.append(["SELECT", "3"]) }  // the same database: "new:*" again
            if selectInPart && i > n / 2 && i % 3 == 0 { second.append(["DEL", new(i - n / 2 + 1)]) }
        }
        // Keys of the first part, of the second (odd "new:*") and not seen yet (even "new:*").
        let later = respAll([["SELECT", "3"]] + (0..<n).map { ["GET", $0 % 3 == 0 ? new($0) : key($0)] })
        func keys(_ split: Bool) throws -> String {
            var options = AOFOptions()
            options.splitMinimumBytes = split ? 64 : 0
            options.splitPieceBytes = .max
            var k = AOFKeys()
            _ = try AOFReader.decode(bytes: respAll(first) + respAll(second), into: &k, options: options)
            #expect(k.mergedParts == (split ? 1 : 0))
            #expect(k.batches.table.adoptedParts == (split && longNames && !selectInPart ? 1 : 0))
            _ = try AOFReader.decode(bytes: later, into: &k, options: AOFOptions())
            let out = OutputBuffer(target: nil)
            try k.writeJSONL(to: out)
            return String(decoding: out.take(), as: UTF8.self)
        }
        let one = try keys(false)
        #expect(one.split(separator: "\n").count == n + n / 2 + (n + 5) / 6 + (selectInPart ? n / 12 : 0))
        #expect(one.contains("{\"db\":3,\"key\":\"\(key(0))\",\"commands\":2,") && one.contains("{\"db\":3,\"key\":\"\(key(4))\",\"commands\":3,"))
        let two = try keys(true)
        #expect(two == one)
    }

    func stats(_ bytes: [UInt8], split: Bool, maxNames: Int = 10_000, pieceBytes: Int? = nil) throws -> (text: String, merged: Int) {
        var options = AOFOptions()
        options.splitMinimumBytes = split ? 64 : 0
        options.splitPieceBytes = pieceBytes
        var st = AOFStats()
        st.maxNames = maxNames
        _ = try AOFReader.decode(bytes: bytes, into: &st, options: options)
        let out = OutputBuffer(target: nil)
        try st.write(to: out)
        return (String(decoding: out.take(), as: UTF8.self) + "multi_blocks=\(st.multiBlocks)", st.mergedParts)
    }

    @Test func statsOfAFileReadInTwoPartsAreTheSame() throws {
        var bytes: [UInt8] = []
        for seed in 10..<16 as Range<UInt64> { bytes += commands(seed: seed, count: 400) }
        let one = try stats(bytes, split: false)
        let two = try stats(bytes, split: true)
        #expect(one.text.contains("db15: ") && two.merged >= 1)
        #expect(two.text == one.text)
        // Names past `maxNames`: the first part has five, the second twelve (nine, then MULTI, SET and EXEC
        // in 30 blocks, then A0 again); with room for 14, the last three are counted under "(other)" (MULTI told
        // by name); with room for 10, the part itself has too many names (it would count A0 under "(other)")
        // and gives up: read on from where it starts. (In one piece; in pieces, the same text.)
        let first = respAll((0..<150).map { ["A\($0 % 5)"] })
        let second = respAll((0..<9).map { ["B\($0)"] }) + (0..<30).flatMap { _ in respAll([["MULTI"], ["SET", "a", "1"], ["EXEC"]]) }
            + respAll((0..<5).map { _ in ["A0"] })  // named in the first part, past the room the second has
        for room in [14, 10] {
            let a = try stats(first + second, split: false, maxNames: room)
            let b = try stats(first + second, split: true, maxNames: room, pieceBytes: .max)
            #expect(a.text.contains("(other)") && a.text.hasSuffix("multi_blocks=30"))
            #expect(b.text == a.text, "room \(room)")
            #expect(try stats(first + second, split: true, maxNames: room).text == a.text, "room \(room), in pieces")
            #expect(b.merged == (room == 14 ? 1 : 0), "room \(room)")
        }
    }
}
