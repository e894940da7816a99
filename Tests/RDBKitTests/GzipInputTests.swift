import Foundation
import RDBKit
import RDBSinks
import Testing

/// gzip inputs (told by content, decompressed on the fly): mapped files, streams in small chunks, concatenated
/// members, truncation.
@Suite("gzip inputs")
struct GzipInputTests {
    static let rdb = Fixtures.url("servers/redis-7.0/mixed.rdb").path
    static let aof = Fixtures.url("servers/redis-7.0/aof/multipart-aof-base/appendonly.aof.2.incr.aof").path

    func gzip(_ bytes: [UInt8], into dir: TempDir, as name: String) throws -> [UInt8] {
        let plain = try dir.write(name + ".plain", bytes)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-k", "-f", "-n", plain]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return Array(try Data(contentsOf: URL(fileURLWithPath: plain + ".gz")))
    }

    func keys(_ path: String) throws -> KindCounter {
        var v = KindCounter()
        try DecodeDriver().decode(paths: [path], into: &v)
        return v
    }

    @Test func filesAndStreams() throws {
        let tmp = try TempDir()
        let bytes = try Fixtures.bytes("servers/redis-7.0/mixed.rdb")
        let gz = try gzip(bytes, into: tmp, as: "a")
        let path = try tmp.write("dump.rdb", gz)  // the name says nothing: the content does
        let opened = try OpenedInput.open(path: path, limit: 1 << 30)
        #expect(opened.kind == .rdb && opened.isStreaming && opened.input?.compression == .gzip && opened.fileSize == gz.count)
        #expect(try keys(path).keys == (try keys(Self.rdb)).keys)
        // Streamed in chunks of 1 and 7 bytes: the decompressed bytes are the file's.
        for chunk in [1, 7, 4096] {
            let input = try InputBuffer.open(stream: ChunkedArrayStream(gz, chunk: chunk), name: "chunked", limit: 1 << 30)
            #expect(input.compression == .gzip)
            var out: [UInt8] = []
            while try input.fill(atLeast: 1) {
                out += input.window
                input.consume(input.window.count)
            }
            #expect(out == bytes, "chunk \(chunk)")
        }
        // An AOF, gzip'd, is an AOF.
        let aofBytes = try Fixtures.bytes("servers/redis-7.0/aof/multipart-aof-base/appendonly.aof.2.incr.aof")
        let aof = try tmp.write("incr", try gzip(aofBytes, into: tmp, as: "b"))
        #expect(try InputKind.detect(path: aof) == .aof)
        #expect(try keys(aof).commands.count == (try keys(Self.aof)).commands.count)
    }

    @Test func concatenatedMembersAndTruncation() throws {
        let tmp = try TempDir()
        let bytes = try Fixtures.bytes("servers/redis-7.0/mixed.rdb")
        let half = bytes.count / 2
        let two = try gzip(Array(bytes[..<half]), into: tmp, as: "x") + gzip(Array(bytes[half...]), into: tmp, as: "y")
        var v = KindCounter()
        try DecodeDriver().decode(paths: [try tmp.write("two.gz", two)], into: &v)
        #expect(v.keys == (try keys(Self.rdb)).keys)
        let whole = try gzip(bytes, into: tmp, as: "z")
        let cut = try tmp.write("cut.gz", Array(whole.prefix(whole.count - 100)))
        #expect(throws: RDBError.self) { try keys(cut) }
        var corrupt = whole
        corrupt[40] ^= 0xFF
        #expect(throws: RDBError.self) { try keys(try tmp.write("corrupt.gz", corrupt)) }
    }
}
