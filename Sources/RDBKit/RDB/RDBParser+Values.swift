extension RDBParser {
    // MARK: decode

    /// Decodes one value of the given encoding and reports its elements.
    @inlinable
    mutating func parseValue<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, _ enc: RDBEncoding) throws {
        switch enc {
        case .string:
            try v.stringValue(try readString(&c, slot: Slot.a))
        case .list, .set, .zset, .zset2, .hash:
            let n = try elementCount(&c, enc)
            try parseElements(&c, &v, enc, count: n)
        case .hashMetadataPreGA, .hashMetadata:
            var minExpire: Int64 = 0
            if enc == .hashMetadata { minExpire = try c.readLE(Int64.self, "a minimum field expiry") }
            let n = try c.readCount("hash size", minItemSize: 3)
            for _ in 0..<n {
                let t = try c.readLength("a field TTL")
                let f = try readString(&c, slot: Slot.a)
                let val = try readString(&c, slot: Slot.b)
                let expire: Int64?
                if t == 0 {
                    expire = nil
                } else if enc == .hashMetadata {
                    expire = minExpire &+ Int64(truncatingIfNeeded: t) &- 1
                } else {
                    expire = Int64(truncatingIfNeeded: t)
                }
                try v.hashField(f, value: val, expireAtMs: expire)
            }
        case .valkeyHash2:
            let n = try c.readCount("hash size", minItemSize: 10)
            for _ in 0..<n {
                let f = try readString(&c, slot: Slot.a)
                let val = try readString(&c, slot: Slot.b)
                let e = try c.readLE(Int64.self, "a field expiry")
                try v.hashField(f, value: val, expireAtMs: e == -1 ? nil : e)
            }
        case .modulePreGA:
            throw RDBError.invalid(at: c.offset, "module value of the pre-GA type 6 has no framing and cannot be read without its module")
        case .module2:
            let s = c.position
            let id = try c.readLength("a module id")
            try skipModuleItems(&c)
            try v.moduleValue(RDBModuleID(rawValue: id), raw: c.bytes(from: s, to: c.position))
        case .hashZipmap:
            let at = c.offset
            var z = try ZipmapReader(try readValueBlob(&c, &v, "zipmap"), blobOffset: at)
            while let (f, val) = try z.next() { try v.hashField(f, value: val, expireAtMs: nil) }
        case .listZiplist:
            let at = c.offset
            var z = try ZiplistReader(try readValueBlob(&c, &v, "ziplist"), blobOffset: at)
            try v.listElements(from: &z)
        case .setIntset:
            let at = c.offset
            var s = try IntsetReader(try readValueBlob(&c, &v, "intset"), blobOffset: at)
            while let i = try s.next() { try v.setMember(RDBString(integer: i)) }
        case .zsetZiplist:
            let at = c.offset
            var z = try ZiplistReader(try readValueBlob(&c, &v, "ziplist"), blobOffset: at)
            while let m = try z.next() {
                try v.zsetMember(m, scoreText: try z.nextRequired("a score"))
            }
        case .hashZiplist:
            let at = c.offset
            var z = try ZiplistReader(try readValueBlob(&c, &v, "ziplist"), blobOffset: at)
            while let f = try z.next() {
                let val = try z.nextRequired("a hash value")
                try v.hashField(f, value: val, expireAtMs: nil)
            }
        case .listQuicklist, .listQuicklist2:
            let n = try elementCount(&c, enc)
            if n >= LZFAhead.minimumNodes && options.decompressAhead, let ahead = scratch.lookahead() {
                if enc == .listQuicklist {
                    return try walkNodesAhead(&c, ahead, count: n, framing: .ziplist) { p, s, job in
                        try p.ziplistNode(s, at: job.nodeOffset, &v)
                    }
                }
                return try walkNodesAhead(&c, ahead, count: n, framing: .quicklist) { p, s, job in
                    try p.quicklistNode(s, container: job.container, at: job.nodeOffset, blobAt: job.blobOffset, &v)
                }
            }
            try parseElements(&c, &v, enc, count: n)
        case .hashListpack:
            let at = c.offset
            var lp = try ListpackReader(try readValueBlob(&c, &v, "listpack"), blobOffset: at)
            while let f = try lp.next() {
                let val = try lp.nextRequired("a hash value")
                try v.hashField(f, value: val, expireAtMs: nil)
            }
        case .hashListpackExPreGA, .hashListpackEx:
            if enc == .hashListpackEx { _ = try c.readLE(Int64.self, "a minimum field expiry") }
            let at = c.offset
            var lp = try ListpackReader(try readValueBlob(&c, &v, "listpack"), blobOffset: at)
            while let f = try lp.next() {
                let val = try lp.nextRequired("a hash value")
                let t = try lp.nextInteger("a field TTL")
                try v.hashField(f, value: val, expireAtMs: t == 0 ? nil : t)
            }
        case .zsetListpack:
            let at = c.offset
            var lp = try ListpackReader(try readValueBlob(&c, &v, "listpack"), blobOffset: at)
            while let m = try lp.next() {
                try v.zsetMember(m, scoreText: try lp.nextRequired("a score"))
            }
        case .setListpack:
            let at = c.offset
            var lp = try ListpackReader(try readValueBlob(&c, &v, "listpack"), blobOffset: at)
            while let m = try lp.next() { try v.setMember(m) }
        case .streamListpacks, .streamListpacks2, .streamListpacks3, .streamListpacks4, .streamListpacks5:
            try walkStream(&c, &v, version: enc.streamVersion, decode: true)
        case .array:
            try walkArray(&c, &v, decode: true)
        }
    }

    // MARK: elements

    /// Encodings whose value is a count followed by that many elements (strings, string pairs, a string and
    /// a score, quicklist nodes), each framed on its own: a value of these can be cut between elements and
    /// its parts decoded apart (`parseElements`, `RDBReader.decodeChunked`'s large values).
    @inlinable
    public static func hasElementFraming(_ enc: RDBEncoding) -> Bool {
        switch enc {
        case .list, .set, .zset, .zset2, .hash, .listQuicklist, .listQuicklist2: return true
        default: return false
        }
    }

    /// Reads the element count of a value of an encoding with element framing (nodes for quicklists).
    @inlinable
    public func elementCount(_ c: inout ByteCursor, _ enc: RDBEncoding) throws -> Int {
        switch enc {
        case .list: return try c.readCount("list length")
        case .set: return try c.readCount("set size")
        case .zset: return try c.readCount("zset size", minItemSize: 2)
        case .zset2: return try c.readCount("zset size", minItemSize: 9)
        case .hash: return try c.readCount("hash size", minItemSize: 2)
        case .listQuicklist: return try c.readCount("quicklist node count")
        case .listQuicklist2: return try c.readCount("quicklist node count", minItemSize: 2)
        default: preconditionFailure("elementCount: \(enc) has no element framing")
        }
    }

    /// Decodes `n` elements of a value of an encoding with element framing, from the cursor (the value's
    /// first element, or any element boundary: a part of the value decoded apart).
    @inlinable
    public mutating func parseElements<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, _ enc: RDBEncoding, count n: Int) throws {
        switch enc {
        case .list:
            for _ in 0..<n { try v.listElement(try readString(&c, slot: Slot.a)) }
        case .set:
            var run = RDBStringRun(self, c, count: n)
            defer { c = run.cursor }
            try v.setMembers(from: &run)
        case .zset:
            for _ in 0..<n {
                let m = try readString(&c, slot: Slot.a)
                let at = c.offset
                let l = try c.readUInt8("a score length")
                let score: Double
                switch l {
                case 253: throw RDBError.invalid(at: at, "NaN score")
                case 254: score = .infinity
                case 255: score = -.infinity
                default:
                    try v.zsetMember(m, scoreText: RDBString(bytes: try c.readBytes(Int(l), "a score")))
                    continue
                }
                try v.zsetMember(m, score: score)
            }
        case .zset2:
            var run = RDBStringRun(self, c, count: n)
            defer { c = run.cursor }
            try v.zsetMembers(from: &run)
        case .hash:
            var run = RDBStringRun(self, c, count: n)
            defer { c = run.cursor }
            try v.hashFields(from: &run)
        case .listQuicklist:
            for _ in 0..<n {
                let at = c.offset
                try ziplistNode(try readString(&c, slot: Slot.a), at: at, &v)
            }
        case .listQuicklist2:
            for _ in 0..<n {
                let at = c.offset
                let container = try c.readLength("a quicklist container")
                let blobAt = c.offset
                try quicklistNode(try readString(&c, slot: Slot.a), container: container, at: at, blobAt: blobAt, &v)
            }
        default:
            preconditionFailure("parseElements: \(enc) has no element framing")
        }
    }

    /// Steps over one element of a value of an encoding with element framing (framing only).
    @inlinable @inline(__always)
    public func skipElement(_ c: inout ByteCursor, _ enc: RDBEncoding) throws {
        switch enc {
        case .list, .set, .listQuicklist:
            try skipStringInline(&c)
        case .hash:
            try skipStringInline(&c)
            try skipStringInline(&c)
        case .zset:
            try skipStringInline(&c)
            let l = try c.readUInt8("a score length")
            if l < 253 { try c.skip(Int(l), "a score") }
        case .zset2:
            try skipStringInline(&c)
            try c.skip(8, "a binary score")
        case .listQuicklist2:
            _ = try c.readLength("a quicklist container")
            try skipStringInline(&c)
        default:
            preconditionFailure("skipElement: \(enc) has no element framing")
        }
    }

    /// Steps over elements of a value of an encoding with element framing, as `skipElement` does, while
    /// `done < count` and the cursor is before `limit` (so at least one when `done < count`), counting them in
    /// `done`. One test of the encoding for the run (a measuring loop calling `skipElement` per element cost
    /// what decoding the elements does). On an error the cursor is at the start of the element that did not
    /// parse, with `done` the elements before it.
    @inlinable
    public func skipElements(_ c: inout ByteCursor, _ enc: RDBEncoding, count: Int, until limit: Int, done: inout Int) throws {
        @inline(__always)
        func run(_ c: inout ByteCursor, _ step: (inout ByteCursor) throws -> Void) throws {
            // Local copies, written back on the way out: the cursor and the count stay in registers.
            var cursor = c
            var k = done
            defer {
                c = cursor
                done = k
            }
            while k < count && cursor.position < limit {
                let before = cursor.position
                do {
                    try step(&cursor)
                } catch {
                    cursor.position = before
                    throw error
                }
                k &+= 1
            }
        }
        switch enc {
        case .list, .set, .listQuicklist:
            try run(&c) { try skipStringInline(&$0) }
        case .hash:
            try run(&c) {
                try skipStringInline(&$0)
                try skipStringInline(&$0)
            }
        case .zset2:
            try run(&c) {
                try skipStringInline(&$0)
                try $0.skip(8, "a binary score")
            }
        default:
            try run(&c) { try skipElement(&$0, enc) }
        }
    }

    /// Steps over all `count` elements of a value (`skipElements` in one run).
    @inlinable @inline(__always)
    func skipAll(_ c: inout ByteCursor, _ enc: RDBEncoding, count: Int) throws {
        var done = 0
        try skipElements(&c, enc, count: count, until: Int.max, done: &done)
    }

    // MARK: skip

    /// Steps over a value, or moves straight to `end` when it is known (a position measured by `recordEnd`
    /// on the same window, so the walk would end there too). A value that is one string (a string or a
    /// single blob) is stepped over by `skipStringInline` (its common forms inline); anything else goes
    /// through `skipValue(_:_:)`.
    @inlinable @inline(__always)
    mutating func skipValue(_ c: inout ByteCursor, _ enc: RDBEncoding, end: Int) throws {
        if end >= 0 {
            c.position = end
            return
        }
        if enc.isOneString { return try skipStringInline(&c) }
        try skipValue(&c, enc)
    }

    /// Steps over a value without decompressing or parsing its blobs.
    @inlinable
    mutating func skipValue(_ c: inout ByteCursor, _ enc: RDBEncoding) throws {
        switch enc {
        case .string, .hashZipmap, .listZiplist, .setIntset, .zsetZiplist, .hashZiplist, .hashListpack,
            .zsetListpack, .setListpack, .hashListpackExPreGA:
            try skipStringInline(&c)
        case .hashListpackEx:
            try c.skip(8, "a minimum field expiry")
            try skipString(&c)
        case .list, .set, .listQuicklist:
            try skipAll(&c, enc, count: try c.readCount("element count"))
        case .hash:
            try skipAll(&c, enc, count: try c.readCount("hash size", minItemSize: 2))
        case .zset:
            try skipAll(&c, enc, count: try c.readCount("zset size", minItemSize: 2))
        case .zset2:
            try skipAll(&c, enc, count: try c.readCount("zset size", minItemSize: 9))
        case .hashMetadataPreGA, .hashMetadata:
            if enc == .hashMetadata { try c.skip(8, "a minimum field expiry") }
            let n = try c.readCount("hash size", minItemSize: 3)
            for _ in 0..<n {
                _ = try c.readLength("a field TTL")
                try skipString(&c)
                try skipString(&c)
            }
        case .valkeyHash2:
            let n = try c.readCount("hash size", minItemSize: 10)
            for _ in 0..<n {
                try skipString(&c)
                try skipString(&c)
                try c.skip(8, "a field expiry")
            }
        case .listQuicklist2:
            try skipAll(&c, enc, count: try c.readCount("quicklist node count", minItemSize: 2))
        case .modulePreGA:
            throw RDBError.invalid(at: c.offset, "module value of the pre-GA type 6 has no framing and cannot be stepped over")
        case .module2:
            _ = try c.readLength("a module id")
            try skipModuleItems(&c)
        case .streamListpacks, .streamListpacks2, .streamListpacks3, .streamListpacks4, .streamListpacks5:
            var none = NoVisitor()
            try walkStream(&c, &none, version: enc.streamVersion, decode: false)
        case .array:
            var none = NoVisitor()
            try walkArray(&c, &none, decode: false)
        }
    }

    // MARK: empty keys

    /// Whether the value is an empty collection (which servers drop on load). Reads ahead on a copy.
    @inlinable
    func isEmptyValue(_ c0: ByteCursor, _ enc: RDBEncoding) throws -> Bool {
        var c = c0
        switch enc {
        case .list, .set, .zset, .hash, .zset2, .hashMetadataPreGA, .valkeyHash2:
            return try c.readLength("element count") == 0
        case .hashMetadata:
            try c.skip(8, "a minimum field expiry")
            return try c.readLength("element count") == 0
        case .listZiplist, .zsetZiplist, .hashZiplist:
            return try peekBlob(&c) { $0.count >= 11 && $0[10] == 0xFF }
        case .hashListpack, .zsetListpack, .setListpack, .hashListpackExPreGA:
            return try peekBlob(&c) { $0.count >= 7 && $0[6] == 0xFF }
        case .hashListpackEx:
            try c.skip(8, "a minimum field expiry")
            return try peekBlob(&c) { $0.count >= 7 && $0[6] == 0xFF }
        case .setIntset:
            return try peekBlob(&c) { $0.count >= 8 && $0[4] == 0 && $0[5] == 0 && $0[6] == 0 && $0[7] == 0 }
        case .hashZipmap:
            return try peekBlob(&c) { $0.count >= 2 && $0[1] == 0xFF }
        case .listQuicklist:
            let n = try c.readLength("quicklist node count")
            for _ in 0..<min(n, UInt64(c.remaining)) {
                if try !peekBlob(&c, { $0.count >= 11 && $0[10] == 0xFF }) { return false }
            }
            return true
        case .listQuicklist2:
            let n = try c.readLength("quicklist node count")
            for _ in 0..<min(n, UInt64(c.remaining)) {
                if try c.readLength("a quicklist container") != 2 { return false }
                if try !peekBlob(&c, { $0.count >= 7 && $0[6] == 0xFF }) { return false }
            }
            return true
        default:
            return false
        }
    }

    /// Looks at a blob's first bytes without decompressing: LZF-compressed blobs count as non-empty.
    @inlinable
    func peekBlob(_ c: inout ByteCursor, _ test: (UnsafeRawBufferPointer) -> Bool) throws -> Bool {
        // Short lengths inside the input without the general reader; the rest (and every bad case) below.
        if c.end &- c.position >= 5 {
            let p = c.base + c.position
            var i = 0
            if p.load(as: UInt8.self) == 0xC3 {
                i = 1
                let clen = RDBParser.shortLength(p, &i)
                let ulen = RDBParser.shortLength(p, &i)
                if clen >= 0 && ulen >= 0 && clen <= c.end &- c.position &- i {
                    c.position &+= i &+ clen
                    return false
                }
            } else {
                let n = RDBParser.shortLength(p, &i)
                if n >= 0 && n <= c.end &- c.position &- i {
                    c.position &+= i &+ n
                    return test(UnsafeRawBufferPointer(start: p + i, count: n))
                }
            }
        }
        let start = c.offset
        switch try c.readLengthOrEncoding() {
        case .length(let n):
            guard n <= UInt64(c.remaining) else {
                throw RDBError.truncated(at: start, need: n > UInt64(Int.max) ? Int.max : Int(n), have: c.remaining, what: "a blob")
            }
            return test(try c.readBytes(Int(n), "a blob"))
        case .encoded(let e):
            c.position = start - c.baseOffset
            try skipString(&c)
            _ = e
            return false
        }
    }
}

/// A visitor that ignores everything; used to walk structures that are being skipped.
@usableFromInline
struct NoVisitor: RDBVisitor {
    @usableFromInline init() {}
}

/// The elements of a hash table's value (a set's members, a hash's fields and values, a sorted set's members and
/// binary scores) as the file frames them, one after another: what `RDBVisitor.setMembers(from:)`,
/// `hashFields(from:)` and `zsetMembers(from:)` are given, to take in one loop. It reads with a copy of the parser
/// (the strings' scratch buffers are the parser's) and a cursor of its own, which the parser takes back after the
/// loop (or an error).
public struct RDBStringRun {
    @usableFromInline var parser: RDBParser
    @usableFromInline var cursor: ByteCursor
    /// Elements (members, or fields with their values) not read yet.
    @usableFromInline var remaining: Int

    @inlinable
    init(_ parser: RDBParser, _ cursor: ByteCursor, count: Int) {
        self.parser = parser
        self.cursor = cursor
        remaining = count
    }

    /// The next member, nil after the last.
    @inlinable @inline(__always)
    public mutating func next() throws -> RDBString? {
        guard remaining > 0 else { return nil }
        remaining &-= 1
        return try parser.readString(&cursor, slot: Slot.a)
    }

    /// The next member of a sorted set with binary scores (RDB type 5) and its score, nil after the last.
    @inlinable @inline(__always)
    public mutating func nextScored() throws -> (RDBString, Double)? {
        guard remaining > 0 else { return nil }
        remaining &-= 1
        let m = try parser.readString(&cursor, slot: Slot.a)
        let at = cursor.offset
        let score = try cursor.readDoubleLE("a binary score")
        if score.isNaN { throw RDBError.invalid(at: at, "NaN score") }
        return (m, score)
    }

    /// The next field and its value, nil after the last.
    @inlinable @inline(__always)
    public mutating func nextPair() throws -> (RDBString, RDBString)? {
        guard remaining > 0 else { return nil }
        remaining &-= 1
        let f = try parser.readString(&cursor, slot: Slot.a)
        return (f, try parser.readString(&cursor, slot: Slot.b))
    }
}
