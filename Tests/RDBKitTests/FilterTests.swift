import Foundation
import RDBKit
import RDBSinks
import XCTest

/// `KeyFilter` and `FilteringVisitor`.
final class FilterTests: XCTestCase {
    static let past: Int64 = 1_000_000
    static let future: Int64 = 4_000_000_000_000
    static let now: Int64 = 1_700_000_000_000

    /// db 0: user:1 (string, expired), user:2 (list), session:a (hash, expires later), blob (200-byte string);
    /// db 3: user:3 (set), scores (zset), ünï (string).
    static let file: [UInt8] = {
        var b = RDBBuilder(version: 9)
        b.selectDB(0)
        b.key(type: 0, "user:1", value: PlainValue.string("alice"), expireMs: past)
        b.key(type: 1, "user:2", value: PlainValue.strings(["a", "b", "c"]))
        b.key(type: 4, "session:a", value: PlainValue.hash([("f", "v"), ("g", "w")]), expireMs: future)
        b.key(type: 0, "blob", value: PlainValue.string(String(repeating: "x", count: 200)))
        b.selectDB(3)
        b.key(type: 2, "user:3", value: PlainValue.strings(["m1", "m2"]))
        b.key(type: 5, "scores", value: PlainValue.zset([("p", 1.5)]))
        b.key(type: 0, "ünï", value: PlainValue.string("u"))
        return b.finished()
    }()

    static let allKeys = ["user:1", "user:2", "session:a", "blob", "user:3", "scores", "ünï"]

    func run(_ filter: KeyFilter, options: RDBDecoderOptions = .init()) throws -> FilteringVisitor<CountingSink> {
        var v = FilteringVisitor(inner: CountingSink(), filter: filter)
        var options = options
        filter.apply(to: &options)
        _ = try RDBReader.decode(bytes: FilterTests.file, into: &v, options: options)
        return v
    }

    func keys(_ filter: KeyFilter) throws -> [String] { try run(filter).inner.keys }

    func testNoConditionsPassEverything() throws {
        let v = try run(KeyFilter())
        XCTAssertEqual(v.inner.keys, FilterTests.allKeys)
        XCTAssertEqual(v.skippedKeys, 0)
        XCTAssertEqual(v.inner.databases, [0, 3])
        XCTAssertEqual(v.inner.endKeys, 7)
    }

    func testDatabases() throws {
        let v = try run(KeyFilter(dbs: [3]))
        XCTAssertEqual(v.inner.keys, ["user:3", "scores", "ünï"])
        XCTAssertEqual(v.inner.databases, [0, 3], "database records still pass")
        XCTAssertEqual(v.skippedKeys, 4)
        XCTAssertEqual(try keys(KeyFilter(dbs: [0, 3])), FilterTests.allKeys)
        XCTAssertEqual(try keys(KeyFilter(dbs: [7])), [])
    }

    func testKeyPatterns() throws {
        XCTAssertEqual(try keys(KeyFilter(keyPattern: try KeyPattern(regex: "^user:"))), ["user:1", "user:2", "user:3"])
        // A search, not a whole-key match.
        XCTAssertEqual(try keys(KeyFilter(keyPattern: try KeyPattern(regex: "o"))), ["session:a", "blob", "scores"])
        XCTAssertEqual(try keys(KeyFilter(keyPattern: try KeyPattern(regex: "^user:\\d$"), notKeyPattern: try KeyPattern(regex: "2"))),
                       ["user:1", "user:3"])
        XCTAssertEqual(try keys(KeyFilter(notKeyPattern: try KeyPattern(regex: ":"))), ["blob", "scores", "ünï"])
        // Keys are matched as UTF-8 text.
        XCTAssertEqual(try keys(KeyFilter(keyPattern: try KeyPattern(regex: "^ü.ï$"))), ["ünï"])
        XCTAssertThrowsError(try KeyPattern(regex: "(unclosed"))
        // Any predicate.
        XCTAssertEqual(try keys(KeyFilter(keyPattern: KeyPattern(source: "short") { $0.count <= 4 })), ["blob", "ünï"])
    }

    func testTypes() throws {
        XCTAssertEqual(try keys(KeyFilter(types: [.hash, .zset])), ["session:a", "scores"])
        XCTAssertEqual(try keys(KeyFilter(types: [.string])), ["user:1", "blob", "ünï"])
        XCTAssertEqual(try keys(KeyFilter(dbs: [0], types: [.string])), ["user:1", "blob"])
    }

    func testExpired() throws {
        XCTAssertEqual(try keys(KeyFilter(noExpired: true, now: FilterTests.now)),
                       ["user:2", "session:a", "blob", "user:3", "scores", "ünï"])
        // Expiry exactly at `now` counts as expired.
        XCTAssertEqual(try keys(KeyFilter(noExpired: true, now: FilterTests.future)),
                       ["user:2", "blob", "user:3", "scores", "ünï"])
        XCTAssertEqual(try keys(KeyFilter(noExpired: true, now: FilterTests.past - 1)), FilterTests.allKeys)
        // The default `now` is the current time.
        XCTAssertEqual(try keys(KeyFilter(noExpired: true)), ["user:2", "session:a", "blob", "user:3", "scores", "ünï"])
    }

    func testNoTTLRemovesExpiries() throws {
        let v = try run(KeyFilter(noTTL: true))
        XCTAssertEqual(v.inner.keys, FilterTests.allKeys)
        XCTAssertTrue(v.inner.infos.allSatisfy { $0.expireAtMs == nil })
        let plain = try run(KeyFilter())
        XCTAssertEqual(plain.inner.infos.map(\.expireAtMs), [FilterTests.past, nil, FilterTests.future, nil, nil, nil, nil])
        // With noExpired, the expired key is dropped first, then the others lose their expiry.
        let both = try run(KeyFilter(noExpired: true, now: FilterTests.now, noTTL: true))
        XCTAssertEqual(both.inner.keys.first, "user:2")
        XCTAssertTrue(both.inner.infos.allSatisfy { $0.expireAtMs == nil })
    }

    func testNoTTLRemovesHashFieldTTLs() throws {
        let bytes = try Fixtures.bytes("corpus/hdt3213-rdb/hash_with_hfe.rdb")
        var plain = CountingSink()
        _ = try RDBReader.decode(bytes: bytes, into: &plain)
        XCTAssertTrue(plain.fieldTTLs.contains { $0 != nil }, "the fixture has field TTLs")
        var v = FilteringVisitor(inner: CountingSink(), filter: KeyFilter(noTTL: true))
        _ = try RDBReader.decode(bytes: bytes, into: &v)
        XCTAssertEqual(v.inner.fieldTTLs.count, plain.fieldTTLs.count)
        XCTAssertTrue(v.inner.fieldTTLs.allSatisfy { $0 == nil })
    }

    func testSizeBoundsUseTheSerializedValueSize() throws {
        // Values: "alice" 6 bytes, list 7, hash 9, blob 202 (2-byte length + 200), set 7, zset 11, "u" 2.
        var measured = RDBDecoderOptions()
        measured.measureValues = true
        var sizes = CountingSink()
        _ = try RDBReader.decode(bytes: FilterTests.file, into: &sizes, options: measured)
        XCTAssertEqual(sizes.infos.map(\.valueSize), [6, 7, 9, 202, 7, 11, 2])
        XCTAssertEqual(try keys(KeyFilter(minSize: 100)), ["blob"])
        XCTAssertEqual(try keys(KeyFilter(maxSize: 7)), ["user:1", "user:2", "user:3", "ünï"])
        XCTAssertEqual(try keys(KeyFilter(minSize: 7, maxSize: 9)), ["user:2", "session:a", "user:3"])
    }

    func testSizeBoundsWithoutMeasuringThrow() throws {
        var v = FilteringVisitor(inner: CountingSink(), filter: KeyFilter(minSize: 1))
        XCTAssertThrowsError(try RDBReader.decode(bytes: FilterTests.file, into: &v)) { e in
            XCTAssertTrue("\(e)".contains("measureValues"), "\(e)")
        }
        var options = RDBDecoderOptions()
        KeyFilter(maxSize: 1).apply(to: &options)
        XCTAssertTrue(options.measureValues)
        KeyFilter(dbs: [1]).apply(to: &options)
        XCTAssertTrue(options.measureValues, "apply only turns things on")
    }

    /// Filtered keys reach the inner sink with no event at all, and their values are stepped over undecoded.
    func testSkippedKeysAreNotDecoded() throws {
        let v = try run(KeyFilter(types: [.zset]))
        XCTAssertEqual(v.inner.keys, ["scores"])
        XCTAssertEqual(v.inner.valueEvents, 1)
        XCTAssertEqual(v.inner.endKeys, 1)
        XCTAssertEqual(v.skippedKeys, 6)

        // A corrupt ziplist: decoding it fails, skipping it does not.
        let corrupt = try Fixtures.bytes("corpus/redis/corrupt_ziplist.rdb")
        var all = FilteringVisitor(inner: CountingSink(), filter: KeyFilter())
        XCTAssertThrowsError(try RDBReader.decode(bytes: corrupt, into: &all))
        var filtered = FilteringVisitor(inner: CountingSink(), filter: KeyFilter(notKeyPattern: try KeyPattern(regex: "^key:000000000091$")))
        XCTAssertNoThrow(try RDBReader.decode(bytes: corrupt, into: &filtered))
        XCTAssertFalse(filtered.inner.keys.contains("key:000000000091"))
        XCTAssertEqual(filtered.inner.endKeys, filtered.inner.keys.count)
    }

    func testDroppedEmptyKeysAreFilteredToo() throws {
        let bytes = try Fixtures.bytes("corpus/redis/corrupt_empty_keys.rdb")
        var all = FilteringVisitor(inner: CountingSink(), filter: KeyFilter())
        _ = try RDBReader.decode(bytes: bytes, into: &all)
        XCTAssertEqual(all.inner.dropped.count, 9)
        var sets = FilteringVisitor(inner: CountingSink(), filter: KeyFilter(types: [.set]))
        _ = try RDBReader.decode(bytes: bytes, into: &sets)
        XCTAssertEqual(sets.inner.dropped.count, 1)
        var none = FilteringVisitor(inner: CountingSink(), filter: KeyFilter(dbs: [5]))
        _ = try RDBReader.decode(bytes: bytes, into: &none)
        XCTAssertEqual(none.inner.dropped, [])
    }

    func testFilterInFrontOfAWriter() throws {
        let filter = KeyFilter(keyPattern: try KeyPattern(regex: "^user:"), noExpired: true, now: FilterTests.now)
        let keys = String(decoding: try sinkOutput(FilterTests.file) { FilteringVisitor(inner: KeysWriter(out: $0), filter: filter) }, as: UTF8.self)
        XCTAssertEqual(keys, "0\tlist\tuser:2\n3\tset\tuser:3\n")
        let json = String(decoding: try sinkOutput(FilterTests.file) { FilteringVisitor(inner: JSONWriter(out: $0), filter: filter) }, as: UTF8.self)
        XCTAssertEqual(json, "[{\n\"user:2\":[\"a\",\"b\",\"c\"]},{\n\"user:3\":[\"m1\",\"m2\"]}]\n")
        let noTTL = KeyFilter(types: [.string], noTTL: true)
        let memory = String(decoding: try sinkOutput(FilterTests.file) { FilteringVisitor(inner: MemoryReportWriter(out: $0), filter: noTTL) }, as: UTF8.self)
        XCTAssertFalse(memory.contains("1970"), memory)
        XCTAssertEqual(memory.split(separator: "\n").count, 4)
    }
}
