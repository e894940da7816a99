import Foundation
import NIOCore
import Testing
@testable import RDBImport

@Suite("Parsing without servers")
struct UnitTests {
    func parseReplies(_ text: String) throws -> [RESPReply] {
        var b = ByteBuffer(string: text)
        let d = RESPReplyDecoder()
        var out: [RESPReply] = []
        while let r = try d.parse(&b, depth: 0) { out.append(r) }
        return out
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
        let v = try JSONValue.parse(Array(#" {"a": [1, -2.5e3, true, null, "x\u00e9\n"], "b": {}} "#.utf8))
        #expect(v["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .null, .string("xé\n")]))
        #expect(v["b"] == .object([]))
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array("{\"a\":}".utf8)) }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array("[1] 2".utf8)) }
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

@Suite("Migration task validation")
struct MigrationTaskTests {
    static let valid = """
        {"task_name":"t1","description":"d","migration_type":"backupfile_import",
         "migration_method":"full_amount_migration",
         "backup_files":{"bucket_name":"b","file_source":"self_build_obs",
           "files":[{"file_name":"a.rdb","size":"5","update_at":"2024-06-01 10:00:00"},{"file_name":"dir/c.aof"}]},
         "target_instance":{"id":"318ed365","name":"cache","password":"pw"}}
        """

    func mutated(_ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var o = try JSONSerialization.jsonObject(with: Data(Self.valid.utf8)) as! [String: Any]
        edit(&o)
        return [UInt8](try JSONSerialization.data(withJSONObject: o))
    }

    func rejected(_ body: [UInt8]) -> MigrationTask.Invalid? {
        do {
            _ = try MigrationTask.parse(body)
            return nil
        } catch let e as MigrationTask.Invalid {
            return e
        } catch {
            return nil
        }
    }

    @Test func validBody() throws {
        let t = try MigrationTask.parse(Array(Self.valid.utf8))
        #expect(t.taskName == "t1" && t.bucketName == "b" && t.files.count == 2)
        #expect(t.files[0].size == 5 && t.files[1].size == nil && t.target.id == "318ed365" && t.target.password?.value == "pw")
    }

    @Test(arguments: ["task_name", "migration_type", "migration_method", "target_instance", "backup_files"])
    func missingField(_ field: String) throws {
        let e = rejected(try mutated { $0.removeValue(forKey: field) })
        #expect(e?.field == field)
        #expect(e?.message.contains("missing") == true || e?.message.contains("required") == true)
    }

    @Test func nestedFields() throws {
        var e = rejected(try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b.removeValue(forKey: "bucket_name")
            o["backup_files"] = b
        })
        #expect(e?.field == "backup_files.bucket_name")
        e = rejected(try mutated { o in
            var t = o["target_instance"] as! [String: Any]
            t.removeValue(forKey: "id")
            o["target_instance"] = t
        })
        #expect(e?.field == "target_instance.id")
        e = rejected(try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [["file_name": "a.rdb"], ["size": "3"]]
            o["backup_files"] = b
        })
        #expect(e?.field == "backup_files.files[1].file_name")
        e = rejected(try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [["file_name": "a.rdb", "size": "12kb"]]
            o["backup_files"] = b
        })
        #expect(e?.field == "backup_files.files[0].size")
        e = rejected(try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [["file_name": "../etc/passwd"]]
            o["backup_files"] = b
        })
        #expect(e?.field == "backup_files.files[0].file_name")
        e = rejected(try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [Any]()
            o["backup_files"] = b
        })
        #expect(e?.field == "backup_files.files")
        e = rejected(try mutated { $0["task_name"] = 5 })
        #expect(e?.field == "task_name" && e?.message.contains("string") == true)
        #expect(rejected(Array("[1]".utf8))?.field == "")
        #expect(rejected(Array("{".utf8))?.message.contains("JSON") == true)
    }

    @Test func unknownAndUnsupportedValues() throws {
        var e = rejected(try mutated { $0["migration_type"] = "copy_everything" })
        #expect(e?.field == "migration_type" && e?.message.contains("unknown") == true)
        e = rejected(try mutated { $0["migration_method"] = "half" })
        #expect(e?.field == "migration_method" && e?.message.contains("unknown") == true)
        e = rejected(try mutated { $0["migration_type"] = "online_migration" })
        #expect(e?.field == "migration_type" && e?.message.contains("not supported") == true)
        e = rejected(try mutated { $0["migration_method"] = "incremental_migration" })
        #expect(e?.field == "migration_method")
        // The password never shows in an error.
        e = rejected(try mutated { o in o["target_instance"] = ["id": "x", "password": 12345] })
        #expect(e?.field == "target_instance.password" && e?.description.contains("12345") == false)
    }

    @Test func filesInTheBucket() throws {
        let root = NSTemporaryDirectory() + "bucket-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/b/dir", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data("12345".utf8).write(to: URL(fileURLWithPath: root + "/b/a.rdb"))
        try Data("*1\r\n".utf8).write(to: URL(fileURLWithPath: root + "/b/dir/c.aof"))
        let t = try MigrationTask.parse(Array(Self.valid.utf8))
        let files = try t.resolve(bucketRoot: root)
        #expect(files.map(\.size) == [5, 4])
        func invalid(_ body: [UInt8], _ root: String) -> MigrationTask.Invalid? {
            do {
                _ = try MigrationTask.parse(body).resolve(bucketRoot: root)
                return nil
            } catch let e as MigrationTask.Invalid { return e } catch { return nil }
        }
        #expect(invalid(Array(Self.valid.utf8), root + "/nowhere")?.field == "backup_files.bucket_name")
        let wrongSize = try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [["file_name": "a.rdb", "size": "6"]]
            o["backup_files"] = b
        }
        let e = invalid(wrongSize, root)
        #expect(e?.field == "backup_files.files[0].size" && e?.message.contains("5") == true)
        let missing = try mutated { o in
            var b = o["backup_files"] as! [String: Any]
            b["files"] = [["file_name": "a.rdb"], ["file_name": "zzz.rdb"]]
            o["backup_files"] = b
        }
        #expect(invalid(missing, root)?.field == "backup_files.files[1].file_name")
    }
}

/// Records what `ReceiverDecoder` hands over.
final class RecordingReceiver: ReplyReceiver {
    var replies: [RESPReply] = []
    var runs: [Int] = []
    func received(_ reply: RESPReply, generation: Int) { replies.append(reply) }
    func receivedOK(count: Int, generation: Int) {
        runs.append(count)
        for _ in 0..<count { replies.append(.simple("OK")) }
    }
    func readComplete(generation: Int) {}
    func closed(generation: Int, error: Error?) {}
}

@Suite("Replies handed to the importer")
struct ReceiverDecoderTests {
    @Test("Every reply once and in order, however the stream is cut; runs of +OK go over as counts")
    func cutAnywhere() throws {
        let stream = "+OK\r\n+OK\r\n+OK\r\n:12\r\n:-3\r\n:0\r\n$-1\r\n+OK\r\n-BUSYKEY Target key name already exists.\r\n*2\r\n:1\r\n+OK\r\n+OK\r\n:99999999999\r\n+QUEUED\r\n"
        let expected: [RESPReply] = [.simple("OK"), .simple("OK"), .simple("OK"), .integer(12), .integer(-3), .integer(0), .bulk(nil),
                                     .simple("OK"), .error("BUSYKEY Target key name already exists."), .array([.integer(1), .simple("OK")]),
                                     .simple("OK"), .integer(99_999_999_999), .simple("QUEUED")]
        let bytes = Array(stream.utf8)
        for cut1 in 0...bytes.count {
            for cut2 in [cut1, min(bytes.count, cut1 + 7), bytes.count] {
                let r = RecordingReceiver()
                let d = ReceiverDecoder(receiver: r, generation: 1)
                var buffer = ByteBuffer()
                for piece in [bytes[0..<cut1], bytes[cut1..<cut2], bytes[cut2...]] {
                    buffer.writeBytes(piece)
                    try d.feed(&buffer)
                }
                #expect(r.replies == expected, "cut at \(cut1), \(cut2)")
                #expect(buffer.readableBytes == 0)
            }
        }
        let whole = RecordingReceiver()
        var b = ByteBuffer(bytes: bytes)
        try ReceiverDecoder(receiver: whole, generation: 1).feed(&b)
        #expect(whole.runs == [3, 1, 1])
    }
}
