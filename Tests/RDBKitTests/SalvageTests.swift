import Testing
import RDBKit
import RDBSinks

struct AbortCounter: RDBVisitor {
    var ended = 0
    var aborted: [(key: String, range: Range<Int>, code: RDBError.Code)] = []
    var checksum: RDBChecksumStatus?
    mutating func endKey() throws { ended += 1 }
    mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        aborted.append((key.string, lostRange, error.code))
    }
    mutating func endFile(checksum: RDBChecksumStatus) throws { self.checksum = checksum }
}

@Suite struct SalvageTests {
    @Test func corruptZiplistIsTheOnlyLoss() throws {
        let bytes = try Fixtures.bytes("corpus/redis/corrupt_ziplist.rdb")
        // Without salvage: the first corrupt value stops the run.
        var plain = AbortCounter()
        #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &plain) }
        var o = RDBDecoderOptions()
        o.salvage = true
        var v = AbortCounter()
        _ = try RDBReader.decode(bytes: bytes, into: &v, options: o)
        #expect(v.aborted.count == 1)
        #expect(v.aborted.first?.code == .corruptEncoding)
        #expect(v.ended > plain.ended)
    }

    @Test func salvagedJSONLHasNoHalfKey() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "a", value: RDBBuilder.string("1"))
        // A listpack hash whose second element claims more bytes than the blob holds: framing intact.
        let bad = RDBBuilder.listpack([RDBBuilder.lpString("f"), [0x80 | 40, 0x61, 0x02]])
        b.key(type: 16, "broken", value: RDBBuilder.string(bad))
        b.key(type: 0, "c", value: RDBBuilder.string("3"))
        let file = b.finished()
        let out = OutputBuffer(target: nil)
        var w = JSONLWriter(out: out)
        var o = RDBDecoderOptions()
        o.salvage = true
        _ = try RDBReader.decode(bytes: file, into: &w, options: o)
        let text = String(decoding: out.take(), as: UTF8.self)
        #expect(text == """
            {"db":0,"key":"a","type":"string","expire_at_ms":null,"value":"1"}
            {"db":0,"key":"c","type":"string","expire_at_ms":null,"value":"3"}

            """)
    }

    @Test func checksumMismatchIsReportedNotFatal() throws {
        var b = RDBBuilder(version: 9)
        b.key(type: 0, "k", value: RDBBuilder.string("v"))
        var bytes = b.finished()
        bytes[bytes.count - 3] ^= 0x40
        var o = RDBDecoderOptions()
        o.salvage = true
        var v = AbortCounter()
        _ = try RDBReader.decode(bytes: bytes, into: &v, options: o)
        if case .mismatch = v.checksum {} else { Issue.record("expected a mismatch status, got \(String(describing: v.checksum))") }
    }
}
