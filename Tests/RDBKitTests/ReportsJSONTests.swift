import Foundation
import RDBKit
import RDBSinks
import XCTest

/// `JSONWriter`: the layout of redis-rdb-tools' `rdb --command json`.
final class ReportsJSONTests: XCTestCase {
    let dir = "corpus/redis-rdb-tools/"

    func testLayoutWithSeveralDatabases() throws {
        let text = try sinkText(dir + "multiple_databases.rdb") { JSONWriter(out: $0) }
        XCTAssertEqual(text, "[{\n\"key_in_zeroth_database\":\"zero\"},{\n\"key_in_second_database\":\"second\"}]\n")
    }

    func testFileWithoutDatabases() throws {
        XCTAssertEqual(try sinkText(dir + "empty_database.rdb") { JSONWriter(out: $0) }, "[]\n")
        // A file with only a MODULE_AUX record.
        XCTAssertEqual(try sinkText(dir + "redis_60_with_module_aux.rdb") { JSONWriter(out: $0) }, "[]\n")
    }

    func testKeysBeforeAnySelectDBOpenDatabaseZero() throws {
        var b = RDBBuilder(version: 9)
        b.key(type: 0, "a", value: PlainValue.string("1"))
        b.selectDB(1)
        b.key(type: 0, "b", value: PlainValue.string("2"))
        let text = String(decoding: try sinkOutput(b.finished()) { JSONWriter(out: $0) }, as: UTF8.self)
        XCTAssertEqual(text, "[{\n\"a\":\"1\"},{\n\"b\":\"2\"}]\n")
    }

    func testEveryTypeExact() throws {
        var b = RDBBuilder(version: 9)
        b.selectDB(0)
        b.key(type: 0, "s", value: PlainValue.string("v"))
        b.key(type: 1, "l", value: PlainValue.strings(["x", "y", "x"]))
        b.key(type: 2, "set", value: PlainValue.strings(["m"]))
        b.key(type: 5, "z", value: PlainValue.zset([("a", 1), ("b", 2.5), ("c", -.infinity), ("d", 1e300)]))
        b.key(type: 4, "h", value: PlainValue.hash([("f", "1"), ("g", "two")]))
        let text = String(decoding: try sinkOutput(b.finished()) { JSONWriter(out: $0) }, as: UTF8.self)
        XCTAssertEqual(text, """
            [{
            "s":"v",
            "l":["x","y","x"],
            "set":["m"],
            "z":{"a":1,"b":2.5,"c":"-inf","d":1e+300},
            "h":{"f":"1","g":"two"}}]

            """)
    }

    func testBinaryStringsInBothModes() throws {
        let escaped = try sinkText(dir + "non_ascii_values.rdb") { JSONWriter(out: $0) }
        XCTAssertEqual(escaped, """
            [{
            "int_value":"123",
            "ascii":"\\u0000! ~0\\n\\t\\rAb",
            "bin":"\\u0000$ ~0\u{7F}\\udcff\\n\\udcaa\\t\\udc80\\rAb",
            "printable":"!+ Ab^~",
            "378":"int_key_name",
            "utf8":"בדיקה𐀏123עברית"}]

            """)
        let b64 = try sinkText(dir + "non_ascii_values.rdb") { JSONWriter(out: $0, binary: .base64) }
        XCTAssertTrue(b64.contains("\n\"Ymlu\":\"ACQgfjB//wqqCYANQWI=\","), b64)  // "bin": 00 24 20 7e 30 7f ff 0a aa 09 80 0d 41 62
        XCTAssertTrue(b64.contains("\n\"Mzc4\":\"aW50X2tleV9uYW1l\","), b64)  // integer key 378
    }

    func testZsetScoresAndStreamObject() throws {
        let text = try sinkText(dir + "redis_50_with_streams.rdb") { JSONWriter(out: $0) }
        let dbs = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        XCTAssertEqual(dbs.count, 1)
        let db = dbs[0]
        XCTAssertEqual(db.count, 14)
        let zset = try XCTUnwrap(db["zset"] as? [String: NSNumber])
        XCTAssertEqual(zset["cccc"]?.doubleValue, 123456789)
        XCTAssertEqual(zset["bbbb"]?.doubleValue, 5000000000)
        XCTAssertTrue(text.contains("\"zset_zipped\":{\"a\":1,\"b\":2,\"c\":3}"))
        let stream = try XCTUnwrap(db["mystream"] as? [String: Any])
        XCTAssertEqual(stream["length"] as? Int, 4)
        XCTAssertEqual(stream["last_id"] as? String, "1528199178069-0")
        let entries = try XCTUnwrap(stream["entries"] as? [[String: Any]])
        XCTAssertEqual(entries.map { $0["id"] as? String }, ["1528176919539-0", "1528199037311-0", "1528199075689-0", "1528199178069-0"])
        XCTAssertEqual(entries[1]["fields"] as? [String], ["sensor-id", "1234", "temperature", "19.8"])
        let groups = try XCTUnwrap(stream["groups"] as? [[String: Any]])
        XCTAssertEqual(groups.map { $0["name"] as? String }, ["mygroup", "mygroup2"])
        let pending = try XCTUnwrap(groups[0]["pending"] as? [[String: Any]])
        XCTAssertEqual(pending.first?["consumer"] as? String, "Dave")
        let consumers = try XCTUnwrap(groups[0]["consumers"] as? [[String: Any]])
        XCTAssertEqual(consumers.map { $0["name"] as? String }, ["Alice", "Dave"])
        XCTAssertEqual(consumers.last?["pending"] as? [String], ["1528199075689-0"])
    }

    func testModuleValue() throws {
        let text = try sinkText(dir + "redis_40_with_module.rdb") { JSONWriter(out: $0) }
        XCTAssertTrue(text.hasPrefix("[{\n\"simplekey\":\"someval\",\n\"foo\":{\"module\":\"ReJSON-RL\",\"version\":0,\"raw\":\""), text)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(text.utf8)))
    }

    func testFinishAfterAnErrorLeavesAValidDocument() throws {
        let full = try Fixtures.bytes(dir + "redis_50_with_streams.rdb")
        let out = OutputBuffer(target: nil)
        var w = JSONWriter(out: out)
        // Cut inside the value of a key in the middle of the file.
        let cut = Array(full.prefix(full.count / 2))
        XCTAssertThrowsError(try RDBReader.decode(bytes: cut, into: &w))
        out.rollback()
        w.finish()
        let text = String(decoding: out.take(), as: UTF8.self)
        let dbs = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], text)
        XCTAssertEqual(dbs.count, 1)
        XCTAssertGreaterThan(dbs[0].count, 0)
        XCTAssertLessThan(dbs[0].count, 14)
        XCTAssertEqual(dbs[0]["string"] as? String, "Hello World")
    }

    func testFilteredDatabaseStaysAnEmptyObjectLikeRdbtools() throws {
        let filter = KeyFilter(dbs: [2])
        let text = try sinkText(dir + "multiple_databases.rdb") { FilteringVisitor(inner: JSONWriter(out: $0), filter: filter) }
        XCTAssertEqual(text, "[{},{\n\"key_in_second_database\":\"second\"}]\n")
    }

    func testLargeOutputFlushesBetweenKeysOnly() throws {
        let target = MemoryTarget()
        let out = OutputBuffer(target: target, flushThreshold: 64)
        var w = JSONWriter(out: out)
        _ = try RDBReader.decode(bytes: try Fixtures.bytes(dir + "parser_filters.rdb"), into: &w)
        XCTAssertEqual(out.pendingCount, 0)
        let direct = try sinkText(dir + "parser_filters.rdb") { JSONWriter(out: $0) }
        XCTAssertEqual(target.string, direct)
    }
}
