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

    /// Bytes moved out of a stream's window (`read(into:)`, the window's then the source's) and given back
    /// (`unread`) are read again from the same offsets, before what the window still held and the rest.
    @Test func bytesReadOutAndGivenBack() throws {
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for (window, take) in [(64, 1000), (4096, 100), (4096, 3000)] {
            let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: 300), chunkSize: window)
            try input.fill(atLeast: 10)
            var out = [UInt8](repeating: 0, count: take)
            var got = 0
            while got < take {
                let n = try out.withUnsafeMutableBytes { try input.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
                #expect(n > 0)
                got += n
            }
            #expect(out == Array(bytes[0..<take]))
            #expect(input.offset == take)
            let held = input.window.count
            // Given back in two parts, after the first 40 bytes.
            try out.withUnsafeBytes { try input.unread([UnsafeRawBufferPointer(rebasing: $0[40..<90]), UnsafeRawBufferPointer(rebasing: $0[90...])]) }
            #expect(input.offset == 40)
            #expect(input.window.count == take - 40 + held)
            try input.fill(atLeast: bytes.count - 40)
            #expect(Array(input.window) == Array(bytes[40...]))
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
