import Testing
import RDBKit
import RDBSinks

/// A streamed input (refilled window) must give exactly what the mapped input gives.
@Suite struct StreamingTests {
    static let fixtures = FixtureTests.full.compactMap { FixtureTests.rdbFixture(for: $0, suffix: ".expected.jsonl") }

    func jsonl(_ input: InputBuffer) throws -> [UInt8] {
        let out = OutputBuffer(target: nil)
        var w = JSONLWriter(out: out, binary: .base64)
        var o = RDBDecoderOptions()
        o.allowNewerVersions = true
        _ = try RDBReader.decode(input, into: &w, options: o)
        return out.take()
    }

    @Test(arguments: fixtures)
    func streamedEqualsMapped(_ fixture: String) throws {
        let bytes = try Fixtures.bytes(fixture)
        let mapped = try bytes.withUnsafeBytes { try jsonl(InputBuffer(region: $0)) }
        for chunk in [1, 7, 4096] {
            let streamed = try jsonl(InputBuffer(stream: ChunkedArrayStream(bytes, chunk: chunk), chunkSize: 64))
            #expect(streamed == mapped, "\(fixture) with chunk \(chunk)")
        }
    }

    @Test func streamedTruncationIsAnError() throws {
        let bytes = try Fixtures.bytes("corpus/redis/encodings.rdb")
        for cut in stride(from: 10, to: bytes.count, by: 37) {
            let input = InputBuffer(stream: ChunkedArrayStream(Array(bytes[0..<cut]), chunk: 5), chunkSize: 64)
            var r = Recorder()
            #expect(throws: RDBError.self) { _ = try RDBReader.decode(input, into: &r) }
        }
    }

    @Test func recordLimitIsEnforced() throws {
        var b = RDBBuilder(version: 9)
        b.key(type: 0, "big", value: RDBBuilder.string([UInt8](repeating: 0x61, count: 100_000)))
        let input = InputBuffer(stream: ChunkedArrayStream(b.finished(), chunk: 1000), chunkSize: 1024)
        var o = RDBDecoderOptions()
        o.maxRecordBytes = 10_000
        var r = Recorder()
        do {
            _ = try RDBReader.decode(input, into: &r, options: o)
            Issue.record("expected a limit error")
        } catch let e as RDBError {
            #expect(e.code == .limitExceeded)
        }
    }
}
