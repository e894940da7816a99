import Foundation
import Testing
import RDBKit
import RDBSinks

/// Every fixture with known content decodes to exactly that content; every broken one fails as stated.
@Suite struct FixtureTests {
    /// `X.rdb.expected.jsonl` (corpus) or `X.expected.jsonl` next to `X.rdb` (server fixtures).
    static let full = Fixtures.files(endingWith: ".expected.jsonl").filter { rdbFixture(for: $0, suffix: ".expected.jsonl") != nil }
    static let partial = Fixtures.files(endingWith: ".rdb.expected-partial.jsonl")
    static let errors = Fixtures.files(endingWith: ".rdb.expected-error.txt")

    @Test func fixturesArePresent() {
        #expect(FixtureTests.full.count > 50)
        #expect(FixtureTests.errors.count > 5)
    }

    static func rdbFixture(for expectedFile: String, suffix: String) -> String? {
        let base = String(expectedFile.dropLast(suffix.count))
        if base.hasSuffix(".rdb") { return base }
        if FileManager.default.fileExists(atPath: Fixtures.url(base + ".rdb").path) { return base + ".rdb" }
        return nil
    }

    @Test(arguments: full)
    func decodesExpectedContent(_ expectedFile: String) throws {
        let fixture = FixtureTests.rdbFixture(for: expectedFile, suffix: ".expected.jsonl")!
        try compare(fixture: fixture, expectedFile: expectedFile, partial: false)
    }

    @Test(arguments: partial)
    func decodesExpectedKeys(_ expectedFile: String) throws {
        let fixture = String(expectedFile.dropLast(".expected-partial.jsonl".count))
        try compare(fixture: fixture, expectedFile: expectedFile, partial: true)
    }

    func compare(fixture: String, expectedFile: String, partial: Bool) throws {
        var options = RDBDecoderOptions()
        // Files whose README says they need the lenient path (e.g. unknown-to-strict versions).
        options.allowNewerVersions = true
        let (objects, _) = try decodeToJSONObjects(try Fixtures.bytes(fixture), options: options)
        let expected = try readExpected(expectedFile)
        let actualIndex = Canonical.index(objects, .base64)
        let expectedIndex = Canonical.index(expected, .latin1)
        if !partial {
            #expect(objects.count == expected.count, "\(fixture): \(objects.count) keys decoded, \(expected.count) expected")
        }
        for (k, e) in expectedIndex.sorted(by: { $0.key < $1.key }) {
            guard let a = actualIndex[k] else {
                Issue.record("\(fixture): key \(k) missing")
                continue
            }
            let want = Canonical.key(e, .latin1, like: e)
            let got = Canonical.key(a, .base64, like: e)
            #expect(got == want, "\(fixture): key \(k)")
        }
    }

    @Test(arguments: errors)
    func failsAsExpected(_ errorFile: String) throws {
        let fixture = String(errorFile.dropLast(".expected-error.txt".count))
        let lines = try String(contentsOf: Fixtures.url(errorFile), encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let bytes = try Fixtures.bytes(fixture)
        try check(fixture: fixture, bytes: bytes, line: lines[0], options: RDBDecoderOptions())
        // An optional "lenient: ..." line says what happens when newer versions are allowed.
        for l in lines.dropFirst() where l.hasPrefix("lenient:") {
            var o = RDBDecoderOptions()
            o.allowNewerVersions = true
            try check(fixture: fixture, bytes: bytes, line: l.dropFirst("lenient:".count).trimmingCharacters(in: .whitespaces), options: o)
        }
    }

    func check(fixture: String, bytes: [UInt8], line: String, options: RDBDecoderOptions) throws {
        let parts = line.split(separator: " ")
        let kind = String(parts[0])
        let offset = parts.count > 1 ? Int(parts[1]) : nil
        if kind == "empty-keys-dropped" {
            var c = DropCounter()
            _ = try RDBReader.decode(bytes: bytes, into: &c)
            #expect(c.dropped > 0 && c.kept == 0, "\(fixture): \(c.dropped) dropped, \(c.kept) kept")
            return
        }
        do {
            var v = DropCounter()
            _ = try RDBReader.decode(bytes: bytes, into: &v, options: options)
            Issue.record("\(fixture): decoded without error, expected \(line)")
        } catch let e as RDBError {
            let want: String = kind.hasPrefix("other:") ? e.code.description : kind
            if kind.hasPrefix("other:") {
                #expect(e.code == .invalidValue || e.code == .corruptEncoding, "\(fixture): \(e)")
            } else {
                #expect(e.code.description == want, "\(fixture): got \(e)")
            }
            if let offset { #expect(e.offset == offset, "\(fixture): got \(e)") }
            #expect(!e.description.isEmpty)
        }
    }
}

struct DropCounter: RDBVisitor {
    var dropped = 0
    var kept = 0
    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws { dropped += 1 }
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        kept += 1
        return .decode
    }
}
