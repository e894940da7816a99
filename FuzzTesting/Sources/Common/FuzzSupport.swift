// Shared by every fuzz target (compiled into each target's module by FuzzTesting/build.sh).
import RDBKit
import RDBSinks

/// A sink that reads every byte of every string, view and identifier it is given, so that a view pointing
/// outside the input (or into freed scratch memory) is caught by AddressSanitizer, and checks the event
/// grammar (begin/end pairs) so that a decoder that reports a half key is caught too.
struct TouchEverything: AOFVisitor {
    var sum: UInt64 = 0
    var keys = 0
    var inKey = false
    var inEntry = false
    var inGroup = false
    var inConsumer = false
    var keyCounter = 0

    @inline(never)
    mutating func touch(_ b: UnsafeRawBufferPointer) {
        var s = sum
        for x in b { s = s &* 31 &+ UInt64(x) }
        sum = s
    }

    mutating func touch(_ s: RDBString) {
        if s.isInteger {
            sum = sum &+ UInt64(bitPattern: s.integer)
            // The text form of an integer must be what the digit count says.
            s.withBytes { b in
                precondition(b.count == s.count, "integer text length disagrees with count")
                touch(b)
            }
        } else {
            precondition(s.bytes.count == 0 || s.bytes.baseAddress != nil)
            touch(s.bytes)
        }
    }

    mutating func touch(_ id: StreamID) { sum = sum &+ id.ms &* 3 &+ id.seq }

    mutating func beginFile(_ header: RDBHeader) throws { sum &+= UInt64(header.version) }
    mutating func auxField(key: RDBString, value: RDBString) throws { touch(key); touch(value) }
    mutating func moduleAux(_ module: RDBModuleID, when: UInt64, body: UnsafeRawBufferPointer) throws { touch(body) }
    mutating func functionLibrary(_ code: RDBString) throws { touch(code) }
    mutating func functionPreGA(name: RDBString, engine: RDBString, description: RDBString?, code: RDBString) throws {
        touch(name); touch(engine); if let description { touch(description) }; touch(code)
    }
    mutating func beginDatabase(_ db: Int) throws { precondition(!inKey && db >= 0) }
    mutating func slotImport(job: RDBString, ranges: [ClosedRange<UInt64>]) throws { touch(job) }
    mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws { touch(raw) }

    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        precondition(!inKey, "beginKey inside a key")
        touch(key)
        keyCounter &+= 1
        // Exercise the three actions: mostly decode, sometimes skip or raw.
        switch keyCounter % 7 {
        case 3: return .skip
        case 5:
            inKey = true
            return .raw
        default:
            inKey = true
            return .decode
        }
    }
    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws { precondition(!inKey); touch(key) }
    mutating func stringValue(_ v: RDBString) throws { precondition(inKey); touch(v) }
    mutating func listElement(_ v: RDBString) throws { precondition(inKey); touch(v) }
    mutating func setMember(_ v: RDBString) throws { precondition(inKey); touch(v) }
    mutating func zsetMember(_ m: RDBString, score: Double) throws { precondition(inKey); touch(m); sum &+= score.bitPattern }
    mutating func zsetMember(_ m: RDBString, scoreText: RDBString) throws {
        precondition(inKey)
        touch(m); touch(scoreText)
        _ = try? RDBParser.score(scoreText)
    }
    mutating func hashField(_ f: RDBString, value: RDBString, expireAtMs: Int64?) throws { precondition(inKey); touch(f); touch(value) }
    mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        precondition(inKey && !inEntry && fieldCount >= 0)
        inEntry = true
        touch(id)
    }
    mutating func streamEntryField(_ f: RDBString, value: RDBString) throws { precondition(inEntry); touch(f); touch(value) }
    mutating func endStreamEntry() throws { precondition(inEntry); inEntry = false }
    mutating func streamMetadata(_ m: RDBStreamMetadata) throws { precondition(inKey && !inEntry); touch(m.lastID) }
    mutating func beginStreamGroup(_ g: RDBStreamGroup) throws {
        precondition(inKey && !inGroup)
        inGroup = true
        touch(g.name)
    }
    mutating func streamPendingEntry(_ e: RDBStreamPendingEntry) throws { precondition(inGroup); touch(e.id) }
    mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws {
        precondition(inGroup && !inConsumer)
        inConsumer = true
        touch(c.name)
    }
    mutating func streamConsumerPendingID(_ id: StreamID) throws { precondition(inConsumer); touch(id) }
    mutating func endStreamConsumer() throws { precondition(inConsumer); inConsumer = false }
    mutating func streamNackedID(_ id: StreamID) throws { precondition(inGroup); touch(id) }
    mutating func endStreamGroup() throws { precondition(inGroup && !inConsumer); inGroup = false }
    mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws { touch(producer); touch(iid); touch(id) }
    mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws {
        precondition(inKey)
        if case .string(let s) = value { touch(s) }
    }
    mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws { precondition(inKey); touch(raw) }
    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws { precondition(inKey); touch(raw) }
    mutating func endKey() throws {
        precondition(inKey && !inEntry && !inGroup, "endKey with an open entry or group")
        inKey = false
        keys += 1
    }
    mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        precondition(lostRange.lowerBound >= 0 && lostRange.lowerBound <= lostRange.upperBound)
        touch(key)
        inKey = false; inEntry = false; inGroup = false; inConsumer = false
    }
    mutating func endFile(checksum: RDBChecksumStatus) throws { precondition(!inKey, "endFile inside a key") }

    // AOF
    mutating func command(_ c: AOFCommand) throws {
        precondition(c.argumentCount > 0 && c.byteCount > 0 && c.offset >= 0)
        for i in 0..<c.argumentCount { touch(c[i]) }
        _ = c.keySpec
        _ = c.forEachKey { touch($0) }
    }
    mutating func annotation(_ text: RDBString, offset: Int) throws { touch(text) }
}

/// Every error a decoder throws must be an `RDBError` with a sane offset; anything else is a bug.
@inline(never)
func expectRDBError(_ body: () throws -> Void) {
    do {
        try body()
    } catch let e as RDBError {
        _ = e.description
    } catch {
        fatalError("non-RDBError thrown: \(error)")
    }
}

/// Decodes RDB bytes through the JSONL writer into memory; returns the output, or nil on an RDBError.
func jsonl(_ input: InputBuffer, options: RDBDecoderOptions) -> [UInt8]? {
    let out = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var w = JSONLWriter(out: out, binary: .escape, includeMetadata: true)
    do {
        _ = try RDBReader.decode(input, into: &w, options: options)
        return out.take()
    } catch let e as RDBError {
        _ = e.description
        return nil
    } catch {
        fatalError("non-RDBError thrown: \(error)")
    }
}

/// Options for hostile input: newer versions allowed (more code runs), checksum off (mutated inputs would
/// otherwise mostly stop at the trailer, after the records have been decoded anyway).
func fuzzOptions(salvage: Bool = false, measure: Bool = false) -> RDBDecoderOptions {
    var o = RDBDecoderOptions()
    o.allowNewerVersions = true
    o.verifyChecksum = false
    o.salvage = salvage
    o.measureValues = measure
    return o
}

/// Wraps a value (bytes after the type byte and key) into a minimal RDB file.
func wrapValue(type: UInt8, _ value: UnsafeRawBufferPointer, version: Int = 12) -> [UInt8] {
    var b = RDBHeader(family: .redis, version: version).magic
    b += [type, 1, 0x6B]  // key "k"
    b += value
    b += [0xFF]
    b += [UInt8](repeating: 0, count: 8)  // checksum 0: not written
    return b
}

/// An RDB string: length prefix and the bytes.
func lengthPrefixed(_ b: UnsafeRawBufferPointer) -> [UInt8] {
    let n = b.count
    var out: [UInt8]
    if n < 64 {
        out = [UInt8(n)]
    } else if n < 16384 {
        out = [0x40 | UInt8(n >> 8), UInt8(n & 0xFF)]
    } else {
        out = [0x80] + withUnsafeBytes(of: UInt32(n).bigEndian, Array.init)
    }
    out += b
    return out
}
