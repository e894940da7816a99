import Foundation
import RDBKit
import RDBSinks
import XCTest

/// `KeysWriter`, `StatsCollector`, `MemoryReportWriter`.
final class ReportsTests: XCTestCase {
    let dir = "corpus/redis-rdb-tools/"

    // MARK: keys

    func testKeysOnePerLine() throws {
        XCTAssertEqual(try sinkText(dir + "multiple_databases.rdb") { KeysWriter(out: $0) },
                       "0\tstring\tkey_in_zeroth_database\n2\tstring\tkey_in_second_database\n")
        let text = try sinkText(dir + "redis_50_with_streams.rdb") { KeysWriter(out: $0) }
        XCTAssertEqual(text.split(separator: "\n").count, 14)
        XCTAssertTrue(text.contains("0\tzset\tzset_zipped\n0\tset\tset_zipped_2\n"))
        XCTAssertTrue(text.hasSuffix("0\tstream\tmystream\n"))
    }

    func testKeysEscaping() throws {
        var b = RDBBuilder(version: 9)
        let keys: [[UInt8]] = [
            Array("a\tb".utf8), Array("l1\nl2".utf8), Array("back\\slash".utf8), [0x00, 0x7F, 0x0D],
            [0xFF, 0x41], Array("é😀".utf8), [0xC2, 0x85], [0xE2, 0x82], Array("plain key".utf8),
        ]
        for k in keys { b.key(type: 0, bytes: k, value: PlainValue.string("v")) }
        b.bytes += [0, 0xC0, 0x01] + PlainValue.string("v")  // a key name stored as an int8: 1
        let text = String(decoding: try sinkOutput(b.finished()) { KeysWriter(out: $0) }, as: UTF8.self)
        XCTAssertEqual(text, """
            0\tstring\ta\\tb
            0\tstring\tl1\\nl2
            0\tstring\tback\\\\slash
            0\tstring\t\\x00\\x7f\\x0d
            0\tstring\t\\xffA
            0\tstring\té😀
            0\tstring\t\\xc2\\x85
            0\tstring\t\\xe2\\x82
            0\tstring\tplain key
            0\tstring\t1

            """)
    }

    func testKeysDoNotDecodeValues() throws {
        // A corrupt ziplist fails a decode, but listing keys steps over every value without parsing it.
        let bytes = try Fixtures.bytes("corpus/redis/corrupt_ziplist.rdb")
        XCTAssertThrowsError(try sinkOutput(bytes) { JSONWriter(out: $0) })
        let text = String(decoding: try sinkOutput(bytes) { KeysWriter(out: $0) }, as: UTF8.self)
        XCTAssertTrue(text.contains("0\thash\tkey:000000000091\n"), text)
    }

    // MARK: stats

    func testStatsText() throws {
        XCTAssertEqual(try sinkText(dir + "multiple_databases.rdb") { StatsCollector(out: $0) }, """
            file: redis RDB 3
            checksum: absent
            db   type    keys  expiring  value_bytes  record_bytes
            0    string     1         0            5            29
            0    (all)      1         0            5            29
            2    string     1         0            7            31
            2    (all)      1         0            7            31
            all  (all)      2         0           12            60
            encodings: string 2
            dropped empty keys: 0
            module aux: none
            functions: none

            """)
        let streams = try sinkText(dir + "redis_50_with_streams.rdb") { StatsCollector(out: $0) }
        XCTAssertTrue(streams.hasPrefix("""
            file: redis RDB 9
            checksum: verified 0x21dffc794f6deee3
            aux: redis-ver=999.999.999
            aux: redis-bits=64
            aux: ctime=1529504197
            aux: used-mem=853144
            aux: aof-preamble=0
            db   type    keys  expiring  value_bytes  record_bytes
            0    string     3         0           27            57
            0    list       2         0          103           122
            0    set        4         0          128           175
            0    zset       2         0          145           164
            0    hash       2         0          131           150
            0    stream     1         0          279           289
            0    (all)     14         0          813           957
            all  (all)     14         0          813           957
            resizedb hint: db 0: 14 keys, 0 expires
            encodings: hashtable 1, intset 3, quicklist 2, stream 1, string 3, ziplist 4

            """), streams)
    }

    func testStatsJSON() throws {
        XCTAssertEqual(try sinkText(dir + "keys_with_expiry.rdb") { StatsCollector(out: $0, json: true) },
                       #"{"family":"redis","version":4,"checksum":{"status":"absent"},"aux":{},"databases":[{"db":0,"keys":1,"expiring":1,"value_bytes":28,"record_bytes":59,"types":{"string":{"keys":1,"expiring":1,"value_bytes":28,"record_bytes":59}}}],"total":{"keys":1,"expiring":1,"value_bytes":28,"record_bytes":59},"encodings":{"string":1},"dropped_empty_keys":0,"module_aux":[],"functions":[]}"# + "\n")
        let text = try sinkText(dir + "redis_50_with_streams.rdb") { StatsCollector(out: $0, json: true) }
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual((o["aux"] as? [String: String])?["redis-ver"], "999.999.999")
        XCTAssertEqual((o["checksum"] as? [String: String])?["crc64"], "0x21dffc794f6deee3")
        let db = try XCTUnwrap((o["databases"] as? [[String: Any]])?.first)
        XCTAssertEqual(db["keys"] as? Int, 14)
        XCTAssertEqual((db["resize_hint"] as? [String: Int])?["keys"], 14)
        XCTAssertEqual(((db["types"] as? [String: Any])?["stream"] as? [String: Int])?["value_bytes"], 279)
    }

    /// The sizes come from `.raw` views, or from `valueSize` when the decoder measures values: the same numbers,
    /// and they add up to the records' bytes in the file.
    func testStatsSizesAreExact() throws {
        for name in ["redis_50_with_streams", "parser_filters", "dictionary", "zipmap_with_big_values", "keys_with_expiry"] {
            let bytes = try Fixtures.bytes(dir + name + ".rdb")
            var measured = RDBDecoderOptions()
            measured.measureValues = true
            var a = StatsCollector(out: OutputBuffer(target: nil))
            var b = StatsCollector(out: OutputBuffer(target: nil))
            _ = try RDBReader.decode(bytes: bytes, into: &a)
            _ = try RDBReader.decode(bytes: bytes, into: &b, options: measured)
            XCTAssertEqual(a.stats.total, b.stats.total, name)
            XCTAssertGreaterThan(a.stats.total.valueBytes, 0, name)
            XCTAssertEqual(a.stats.databases.map(\.types), b.stats.databases.map(\.types), name)
            // Record bytes = sum of (next record offset - record offset) over key records.
            var offsets = RecordOffsets()
            _ = try RDBReader.decode(bytes: bytes, into: &offsets)
            XCTAssertEqual(a.stats.total.recordBytes, offsets.keyRecordBytes, name)
        }
    }

    /// Sums key record sizes from the offsets the decoder reports, with `.raw` to find each value's end.
    struct RecordOffsets: RDBVisitor {
        var keyRecordBytes = 0
        var start = 0
        var valueOffset = 0
        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            start = info.recordOffset
            valueOffset = info.valueOffset
            return .raw
        }
        mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws { keyRecordBytes += valueOffset - start + raw.count }
    }

    func testStatsExpiredAsOfNow() throws {
        let expiry: Int64 = 1_671_963_072_573
        var s = StatsCollector(out: OutputBuffer(target: nil), now: expiry)
        _ = try RDBReader.decode(bytes: try Fixtures.bytes(dir + "keys_with_expiry.rdb"), into: &s)
        XCTAssertEqual(s.stats.expiredKeys, 1)
        XCTAssertTrue(String(decoding: s.out.take(), as: UTF8.self).contains("\nexpired keys: 1\n"))
        s = StatsCollector(out: OutputBuffer(target: nil), now: expiry - 1)
        _ = try RDBReader.decode(bytes: try Fixtures.bytes(dir + "keys_with_expiry.rdb"), into: &s)
        XCTAssertEqual(s.stats.expiredKeys, 0)
        XCTAssertEqual(s.stats.total.expiring, 1)
    }

    func testStatsSpecialRecords() throws {
        let functions = try sinkText("corpus/librdb/function2.rdb") { StatsCollector(out: $0) }
        XCTAssertTrue(functions.hasSuffix("functions: mylib2, mylib\n"), functions)
        let preGA = try sinkText("corpus/redis-replicator/function.rdb") { StatsCollector(out: $0) }
        XCTAssertTrue(preGA.hasSuffix("functions: lib2, lib1\n"), preGA)
        let empty = try sinkText("corpus/redis/corrupt_empty_keys.rdb") { StatsCollector(out: $0) }
        XCTAssertTrue(empty.contains("\n0    (all)     0         0            0             0\n"), empty)
        XCTAssertTrue(empty.contains("\ndropped empty keys: 9\n"), empty)
        let moduleAux = try sinkText(dir + "redis_60_with_module_aux.rdb") { StatsCollector(out: $0, json: true) }
        XCTAssertTrue(moduleAux.contains(#""module_aux":[{"module":"test__rdb","version":1,"when":2,"bytes":12}]"#), moduleAux)
        let noCRC = try sinkText(dir + "redis_40_with_module.rdb") { StatsCollector(out: $0) }
        XCTAssertTrue(noCRC.contains("\nchecksum: not-written\n"), noCRC)
    }

    // MARK: memory

    func testMemoryReportRows() throws {
        let header = "database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n"
        // Rows identical to rdbtools 0.1.15's.
        let expected: [(String, String)] = [
            ("integer_keys", """
                0,string,183358245,72,string,23,23,
                0,string,125,64,string,22,22,
                0,string,-29477,72,string,23,23,
                0,string,-123,64,string,22,22,
                0,string,43947,72,string,23,23,
                0,string,-183358245,72,string,23,23,

                """),
            ("keys_with_expiry", "0,string,expires_ms_precision,128,string,27,27,2022-12-25T10:11:12.573000\n"),
            ("multiple_databases", "0,string,key_in_zeroth_database,72,string,4,4,\n2,string,key_in_second_database,72,string,6,6,\n"),
            ("intset_16", "0,set,intset_16,70,intset,3,8,\n"),
            ("intset_64", "0,set,intset_64,88,intset,3,8,\n"),
            ("regular_set", "0,set,regular_set,436,hashtable,6,5,\n"),
            ("dictionary", "0,hash,force_dictionary,148444,hashtable,1000,50,\n"),
            ("zipmap_that_doesnt_compress", "0,hash,zimap_doesnt_compress,88,zipmap,2,8,\n"),
            ("zipmap_with_big_values", "0,hash,zipmap_with_big_values,21221,ziplist,5,20000,\n"),
            ("hash_as_ziplist", "0,hash,zipmap_compresses_easily,123,ziplist,3,14,\n"),
            ("linkedlist", "0,list,force_linkedlist,52509,quicklist,1000,50,\n"),
            ("ziplist_that_compresses_easily", "0,list,ziplist_compresses_easily,301,quicklist,6,36,\n"),
            ("redis_40_with_module", "0,string,simplekey,72,string,7,7,\n0,module,foo,101,ReJSON-RL,1,101,\n"),
            // rdbtools: `0,string,a,"b",c,64,...` (unquoted); the stream row: rdbtools prints num_elements 1.
            ("pr-189/key-with-comma", "0,string,\"a,\"\"b\"\",c\",64,string,4,4,\n"),
        ]
        for (name, rows) in expected {
            XCTAssertEqual(try sinkText(dir + name + ".rdb") { MemoryReportWriter(out: $0) }, header + rows, name)
        }
        // rdbtools' rows too, but for the stream's num_elements (rdbtools prints 1).
        let streams = try sinkText(dir + "redis_50_with_streams.rdb") { MemoryReportWriter(out: $0) }
        XCTAssertTrue(streams.hasSuffix("\n0,hash,hash_zipped,88,ziplist,3,8,\n0,stream,mystream,1976,listpack,4,184,\n"), streams)
    }

    func testMemoryReportHeaderOncePerOutput() throws {
        let out = OutputBuffer(target: nil)
        var w = MemoryReportWriter(out: out)
        for name in ["intset_16", "intset_64"] {
            _ = try RDBReader.decode(bytes: try Fixtures.bytes(dir + name + ".rdb"), into: &w)
        }
        XCTAssertEqual(String(decoding: out.take(), as: UTF8.self), """
            database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry
            0,set,intset_16,70,intset,3,8,
            0,set,intset_64,88,intset,3,8,

            """)
    }

    func testMemoryReportExpiryFormat() throws {
        // Python's datetime.isoformat(): no fraction on whole seconds, microseconds otherwise; UTC.
        let cases: [(Int64, String)] = [
            (0, "1970-01-01T00:00:00"),
            (1, "1970-01-01T00:00:00.001000"),
            (-1, "1969-12-31T23:59:59.999000"),
            (951_782_400_000, "2000-02-29T00:00:00"),
            (1_671_963_072_573, "2022-12-25T10:11:12.573000"),
            (221_925_052_799_000, "9002-07-11T23:59:59"),
            // rdbtools clamps expiries at 221925052800 s (then adds the sub-second part); so do we.
            (253_402_300_799_999, "9002-07-12T00:00:00.999000"),
        ]
        var b = RDBBuilder(version: 9)
        for (i, c) in cases.enumerated() { b.key(type: 0, "k\(i)", value: PlainValue.string("v"), expireMs: c.0) }
        let text = String(decoding: try sinkOutput(b.finished()) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        let expiries = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).last.map(String.init) ?? "" }
        XCTAssertEqual(expiries, cases.map(\.1))
    }

    func testMemoryReportEveryEncodingDecodes() throws {
        // Newer encodings rdbtools cannot read: rows are well-formed and named after the file's encoding.
        for fixture in ["corpus/valkey/encodings-rdb12.rdb", "corpus/hdt3213-rdb/hash_with_hfe.rdb",
                        "corpus/hdt3213-rdb/hash_as_listpack_with_hfe.rdb", "corpus/hdt3213-rdb/set_listpack.rdb",
                        "corpus/hdt3213-rdb/stream_listoacks_3.rdb", "corpus/redis-rdb-tools/pr-193/streams.rdb"] {
            let text = try sinkText(fixture) { MemoryReportWriter(out: $0) }
            let rows = text.split(separator: "\n").dropFirst()
            XCTAssertFalse(rows.isEmpty, fixture)
            for r in rows {
                let c = r.split(separator: ",", omittingEmptySubsequences: false)
                XCTAssertEqual(c.count, 8, "\(fixture): \(r)")
                XCTAssertGreaterThan(Int(c[3]) ?? 0, 0, "\(fixture): \(r)")
                XCTAssertTrue(["string", "quicklist", "hashtable", "intset", "listpack", "skiplist", "ziplist"].contains(c[4]), "\(fixture): \(r)")
            }
        }
        let sets = try sinkText("corpus/hdt3213-rdb/set_listpack.rdb") { MemoryReportWriter(out: $0) }
        XCTAssertTrue(sets.contains(",set,"), sets)
        XCTAssertTrue(sets.contains(",listpack,"), sets)
    }
}
