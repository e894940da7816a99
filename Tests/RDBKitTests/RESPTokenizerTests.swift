import Testing
import RDBKit
import RDBSinks

/// `RESPTokenizer` and `RESPCommandReader` on hand-made bytes: every type, frames cut at every byte,
/// bad bytes (position and message), limits checked before the bytes are there; and `RESPEncoder`'s
/// output read back.
@Suite struct RESPTokenizerTests {
    /// One token of each kind, as (kind, payload text, value).
    struct Seen: Equatable, CustomStringConvertible {
        var kind: RESPTokenKind
        var payload: String
        var value: Int64
        var description: String { "\(kind)(\(payload),\(value))" }
    }

    static let mixed = Array((
        "+OK\r\n-ERR bad thing\r\n:42\r\n:-9223372036854775808\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n" +
        "*2\r\n$1\r\na\r\n*1\r\n:1\r\n%1\r\n+k\r\n,3.5\r\n~2\r\n#t\r\n#f\r\n_\r\n(-123\r\n!3\r\nERR\r\n" +
        "=7\r\ntxt:abc\r\n>2\r\n+message\r\n$1\r\nx\r\n|1\r\n+ttl\r\n:3\r\n+value\r\n"
    ).utf8)

    func tokens(_ bytes: [UInt8]) throws -> [Seen] {
        try bytes.withUnsafeBytes { w in
            let t = RESPTokenizer()
            var out: [Seen] = []
            var p = 0
            while p < w.count {
                guard case .token(let tok) = try t.next(w, at: p) else { Issue.record("needMore at \(p)"); break }
                out.append(Seen(kind: tok.kind, payload: String(decoding: tok.payload(in: w), as: UTF8.self), value: tok.value))
                #expect(tok.start == p)
                p = tok.end
            }
            return out
        }
    }

    @Test func everyType() throws {
        let s = try tokens(Self.mixed)
        let want: [Seen] = [
            .init(kind: .simpleString, payload: "OK", value: 0), .init(kind: .simpleError, payload: "ERR bad thing", value: 0),
            .init(kind: .integer, payload: "42", value: 42), .init(kind: .integer, payload: "-9223372036854775808", value: .min),
            .init(kind: .bulkString, payload: "he\r\no", value: 0), .init(kind: .bulkString, payload: "", value: 0),
            .init(kind: .null, payload: "", value: 0), .init(kind: .null, payload: "", value: 0),
            .init(kind: .array, payload: "", value: 2), .init(kind: .bulkString, payload: "a", value: 0),
            .init(kind: .array, payload: "", value: 1), .init(kind: .integer, payload: "1", value: 1),
            .init(kind: .map, payload: "", value: 1), .init(kind: .simpleString, payload: "k", value: 0),
            .init(kind: .double, payload: "3.5", value: 0), .init(kind: .set, payload: "", value: 2),
            .init(kind: .boolean, payload: "t", value: 1), .init(kind: .boolean, payload: "f", value: 0),
            .init(kind: .null, payload: "", value: 0), .init(kind: .bigNumber, payload: "-123", value: 0),
            .init(kind: .bulkError, payload: "ERR", value: 0), .init(kind: .verbatimString, payload: "txt:abc", value: 0),
            .init(kind: .push, payload: "", value: 2), .init(kind: .simpleString, payload: "message", value: 0),
            .init(kind: .bulkString, payload: "x", value: 0), .init(kind: .attribute, payload: "", value: 1),
            .init(kind: .simpleString, payload: "ttl", value: 0), .init(kind: .integer, payload: "3", value: 3),
            .init(kind: .simpleString, payload: "value", value: 0),
        ]
        #expect(s == want)
    }

    /// The ends of the whole values in `mixed`.
    @Test func valueEnds() throws {
        let ends: [Int] = try Self.mixed.withUnsafeBytes { w in
            let t = RESPTokenizer()
            var p = 0
            var out: [Int] = []
            while p < w.count {
                guard case .complete(let e) = try t.valueEnd(w, at: p) else { Issue.record("incomplete at \(p)"); break }
                out.append(e)
                p = e
            }
            return out
        }
        // +OK -ERR :42 :min $5 $0 $-1 *-1 *2[a,*1[:1]] %1{k:3.5} ~2{t,f} _ ( ! = >2 |1{ttl:3}value
        #expect(ends.count == 17)
        #expect(ends.last == Self.mixed.count)
    }

    /// Every prefix of every value is `needMore` asking for more than it has, never an error; the
    /// whole value is complete at its end.
    @Test func cutAtEveryByte() throws {
        let t = RESPTokenizer()
        try Self.mixed.withUnsafeBytes { all in
            var p = 0
            while p < all.count {
                guard case .complete(let end) = try t.valueEnd(all, at: p) else { Issue.record("incomplete"); return }
                for cut in p..<end {
                    let w = UnsafeRawBufferPointer(rebasing: all[0..<cut])
                    let r = try t.valueEnd(w, at: p)
                    guard case .needMore(let k) = r else { Issue.record("cut at \(cut) of \(p)..<\(end): \(r)"); continue }
                    #expect(k > cut && k <= end, "cut at \(cut): asks for \(k)")
                    if case .token = try t.next(w, at: p), cut == p { Issue.record("token from nothing") }
                }
                p = end
            }
        }
    }

    func error(_ text: String, limits: RESPLimits = RESPLimits()) -> RESPFormatError? {
        Array(text.utf8).withUnsafeBytes { w -> RESPFormatError? in
            do {
                _ = try RESPTokenizer(limits: limits).valueEnd(w, at: 0)
                return nil
            } catch {
                return error as? RESPFormatError
            }
        }
    }

    @Test func badBytes() {
        let cases: [(String, Int, String)] = [
            ("?x\r\n", 0, "expected a RESP type byte"),
            ("$x\r\n", 1, "bulk length is not a decimal number"),
            ("$-2\r\n", 1, "negative bulk length"),
            ("!-1\r\n", 1, "negative bulk length"),
            ("$3\r\nabcX\r\n", 7, "not followed by CRLF"),
            ("$3\nabc\r\n", 2, "bare LF"),
            ("$3\rxabc\r\n", 3, "expected CRLF after the bulk length"),
            ("$1234567890123456789\r\n", 0, "more than 18 digits"),
            ("*1\r\n*x\r\n", 5, "element count is not a decimal number"),
            ("%-1\r\n", 1, "negative element count"),
            ("+OK\n", 3, "bare LF"),
            ("+O\rK\r\n", 2, "a CR inside a line"),
            (":12a\r\n", 1, "not a 64-bit decimal"),
            (":9223372036854775808\r\n", 1, "not a 64-bit decimal"),
            (":\r\n", 1, "not a 64-bit decimal"),
            ("#x\r\n", 1, "boolean"),
            ("_x\r\n", 1, "null"),
            ("(12x\r\n", 1, "big number"),
            ("*2\r\n:1\r\n\r\n", 8, "expected a RESP type byte"),
        ]
        for (text, at, message) in cases {
            let e = error(text)
            #expect(e?.kind == .malformed && e?.position == at && e?.message.contains(message) == true,
                    "\(text.debugDescription): \(String(describing: e))")
        }
    }

    @Test func limitsBeforeTheBytes() {
        var limits = RESPLimits()
        limits.maxBulkBytes = 10
        limits.maxAggregateCount = 3
        limits.maxLineBytes = 8
        for text in ["$11\r\n", "*1\r\n$1000000\r\n", "*4\r\n", "%2\r\n:1\r\n~9\r\n", "+123456789"] {
            let e = error(text, limits: limits)
            #expect(e?.kind == .tooLarge, "\(text.debugDescription): \(String(describing: e))")
        }
        #expect(error("$10\r\n", limits: limits) == nil)  // within the limit: needMore, no error
        #expect(error("+1234", limits: limits) == nil)
    }

    // MARK: commands

    func readCommands(_ bytes: [UInt8], step: Int) throws -> [[String]] {
        var reader = RESPCommandReader()
        var out: [[String]] = []
        var args: [String] = []
        var start = 0
        var have = min(step, bytes.count)
        while start < bytes.count {
            let event = try bytes.withUnsafeBytes { all in
                try reader.next(UnsafeRawBufferPointer(rebasing: all[0..<have]), commandStart: start)
            }
            switch event {
            case .header(let n): #expect(n > 0)
            case .argument(let s, let c): args.append(String(decoding: bytes[s..<(s + c)], as: UTF8.self))
            case .end(let e):
                #expect(reader.argumentCount == 0)
                out.append(args)
                args = []
                start = e
            case .needMore(let k):
                #expect(k > have)
                guard have < bytes.count else { Issue.record("needMore at the end"); return out }
                have = min(bytes.count, max(k, have + step))
            }
        }
        return out
    }

    @Test func commandsInAnyPieces() throws {
        let commands = [["SET", "key", "va\r\nlue"], ["PING"], ["RPUSH", "l", "", "b", String(repeating: "z", count: 300)]]
        let out = OutputBuffer(target: nil)
        var enc = RESPEncoder(out: out)
        for c in commands {
            enc.begin(maxArguments: 1)  // fewer than written: the header grows
            for a in c { enc.argument(Array(a.utf8)) }
            enc.end()
        }
        #expect(enc.commandsEnded == 3)
        let bytes = out.take()
        for step in [1, 2, 3, 7, 64, bytes.count] {
            #expect(try readCommands(bytes, step: step) == commands, "step \(step)")
        }
    }

    @Test func badCommands() {
        let cases: [(String, RESPFormatError.Kind, Int, String)] = [
            (":1\r\n", .malformed, 0, "expected '*'"),
            ("*0\r\n", .malformed, 0, "at least one argument"),
            ("*2\r\n$3\r\nSET\r\n:1\r\n", .malformed, 13, "expected '$' before argument 2 of 2"),
            ("*1\r\n$3\r\nSETx\r\n", .malformed, 11, "argument 1 of 3 bytes is not followed by CRLF"),
            ("*2000000\r\n", .tooLarge, 0, "claims 2000000 arguments"),
            ("*1\r\n$600000000\r\n", .tooLarge, 4, "claims 600000000 bytes"),
        ]
        for (text, kind, at, message) in cases {
            var reader = RESPCommandReader()
            let e: RESPFormatError? = Array(text.utf8).withUnsafeBytes { w -> RESPFormatError? in
                do {
                    while true {
                        switch try reader.next(w, commandStart: 0) {
                        case .end, .needMore: return nil
                        default: continue
                        }
                    }
                } catch { return error as? RESPFormatError }
            }
            #expect(e?.kind == kind && e?.position == at && e?.message.contains(message) == true,
                    "\(text.debugDescription): \(String(describing: e))")
        }
    }
}
