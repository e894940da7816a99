import Foundation
import NIOCore
import Testing
@testable import RDBImport
import RDBSinks
import RedisWire

@Suite("Parsing without servers")
struct UnitTests {
    func parseReplies(_ text: String) throws -> [RESPReply] {
        var b = ByteBuffer(string: text)
        let d = RESPReplyDecoder()
        var out: [RESPReply] = []
        while let r = try d.parse(&b, depth: 0) { out.append(r) }
        return out
    }

    /// Batches are allocated at what NIO allocates anyway (a power of two), filled to the size asked for or
    /// 4 KiB short of the allocation's end.
    @Test func batchSizes() {
        #expect(BatchBuilder.sizes(filling: 256 << 10) == (252 << 10, 256 << 10))
        #expect(BatchBuilder.sizes(filling: 100 << 10) == (100 << 10, 128 << 10))
        #expect(BatchBuilder.sizes(filling: 16 << 10) == (12 << 10, 16 << 10))
        #expect(BatchBuilder.sizes(filling: 1) == (4096, 8192))
        for bytes in [1, 4096, 16 << 10, 100 << 10, 256 << 10, 1 << 20] {
            let (fill, capacity) = BatchBuilder.sizes(filling: bytes)
            #expect(Batch(allocator: ByteBufferAllocator(), capacity: capacity).buffer.capacity == capacity, "\(bytes)")
            #expect(capacity - fill >= 4096 && fill <= max(bytes, 8192), "\(bytes)")
        }
    }

    @Test func replyTypes() throws {
        let r = try parseReplies("+OK\r\n-ERR wrong\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n*1\r\n-BUSYKEY x\r\n*-1\r\n")
        #expect(r == [.simple("OK"), .error("ERR wrong"), .integer(42), .bulk(Array("abc".utf8)), .bulk(nil),
                      .array([.integer(1), .array([.error("BUSYKEY x")])]), .array(nil)])
        #expect(r[5].firstNestedError == "BUSYKEY x")
    }

    @Test func partialRepliesWaitForMoreBytes() throws {
        let whole = "*3\r\n$5\r\nhello\r\n:7\r\n+OK\r\n"
        for cut in 0..<whole.utf8.count {
            var b = ByteBuffer(bytes: Array(whole.utf8.prefix(cut)))
            #expect(try RESPReplyDecoder().parse(&b, depth: 0) == nil, "cut at \(cut)")
        }
        #expect(try parseReplies(whole) == [.array([.bulk(Array("hello".utf8)), .integer(7), .simple("OK")])])
    }

    @Test func badReplyIsAnError() {
        var b = ByteBuffer(string: "?what\r\n")
        #expect(throws: RESPProtocolError.self) { try RESPReplyDecoder().parse(&b, depth: 0) }
    }

    @Test func endpointURLs() throws {
        let e = try RedisEndpoint.parse("redis://alice:s%40cret@10.0.0.1:6380/3")
        #expect(e.host == "10.0.0.1" && e.port == 6380 && e.database == 3 && e.username == "alice")
        #expect(e.password?.value == "s@cret")
        #expect(e.description == "redis://alice:***@10.0.0.1:6380/3")
        #expect(!"\(e)".contains("cret") && !String(reflecting: e).contains("cret"))
        let t = try RedisEndpoint.parse("rediss://:pw@example.com")
        #expect(t.tls != nil && t.port == 6379 && t.username == nil && t.password?.value == "pw")
        let h = try RedisEndpoint.parse("[::1]:7000")
        #expect(h.host == "::1" && h.port == 7000 && h.hostIsIPAddress)
        #expect(throws: RedisEndpoint.ParseError.self) { try RedisEndpoint.parse("http://x") }
        #expect(throws: RedisEndpoint.ParseError.self) { try RedisEndpoint.parse("redis://u:topsecret@host:99999") }
        do {
            _ = try RedisEndpoint.parse("redis://u:topsecret@host:notaport")
        } catch {
            #expect(!"\(error)".contains("topsecret"))
        }
        #expect(Secret("abc").redact("x abc y abc") == "x *** y ***")
    }

    @Test func serverVersions() {
        #expect(ServerInfo(info: "redis_version:6.2.14\r\nrun_id:x\r\n").rdbVersion == 9)
        #expect(ServerInfo(info: "redis_version:7.0.15\r\n").rdbVersion == 10)
        #expect(ServerInfo(info: "redis_version:7.4.1\r\n").rdbVersion == 12)
        let v = ServerInfo(info: "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n")
        #expect(v.name == "valkey" && v.version == "8.1.8" && v.rdbVersion == 11)
        #expect(ServerInfo(info: "redis_version:7.2.4\r\nvalkey_version:9.0.0\r\n").rdbVersion == 80)
    }

    /// The importer's own commands and AOF pass-through go through `RESPEncoder` into a `ByteBuffer`,
    /// also when the argument count needs more or fewer digits than reserved, after a consumed prefix.
    @Test func encoderOnByteBuffer() {
        var b = ByteBuffer()
        b.writeStaticString("xx")
        b.moveReaderIndex(forwardBy: 1)
        Commands.select(&b, 12)
        Array("key".utf8).withUnsafeBytes { k in
            Commands.del(&b, k, prefix: Array("tmp:".utf8))
            Commands.renameNX(&b, k, tmpPrefix: Array("t:".utf8))
        }
        Commands.encode(&b) { e in
            e.begin(maxArguments: 1)
            for i in 0..<11 { e.argument(i) }
            e.end()
            e.begin(maxArguments: 100)
            e.argument("PING")
            e.end()
            e.begin(maxArguments: 2)
            e.argument("X")
            e.cancel()
        }
        let want = "x*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n*2\r\n$3\r\nDEL\r\n$7\r\ntmp:key\r\n"
            + "*3\r\n$8\r\nRENAMENX\r\n$5\r\nt:key\r\n$3\r\nkey\r\n*11\r\n"
            + (0..<11).map { "$\(String($0).count)\r\n\($0)\r\n" }.joined() + "*1\r\n$4\r\nPING\r\n"
        #expect(String(buffer: b) == want)
    }

    @Test func json() throws {
        var j = JSONBuilder()
        j.beginObject()
        j.field("k", "q\"")
        j.key("b")
        j.bytes([0x61, 0xFF])
        j.key("n")
        j.beginArray()
        j.int(1)
        j.int(2)
        j.endArray()
        j.endObject()
        #expect(j.text == #"{"k":"q\"","b":"a\udcff","n":[1,2]}"#)
    }
}

