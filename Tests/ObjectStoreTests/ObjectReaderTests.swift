import Foundation
import RDBKit
import RDBTestSupport
import Testing
@testable import ObjectStore

/// The object reader against a real S3-compatible server (moto_server, signature checking on), directly and
/// through a proxy that cuts connections.
@Suite("Object reader")
struct ObjectReaderTests {
    static let repositoryRoot = Spawn.repositoryRoot(of: #filePath)

    static let fixture = repositoryRoot + "/testdata/servers/redis-7.0/mixed.rdb"

    func configuration(_ moto: MotoServer, port: Int? = nil, secret: String? = nil, range: Int = 4096) throws -> S3Configuration {
        var c = try S3Configuration(
            endpoint: "http://127.0.0.1:\(port ?? moto.port)", region: "us-east-1", pathStyle: true,
            credentials: S3Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey))
        c.rangeBytes = range
        c.firstRangeBytes = 1000
        c.retryTimeout = 10
        return c
    }

    /// Reads the whole object through `reader` in reads of odd sizes.
    func readAll(_ reader: ObjectReader) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 3001)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    @Test("Every byte, in ranged GETs of a few KiB, signed and checked by the server")
    func wholeObject() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("dumps/mixed.rdb", Self.fixture), ("dumps/with space.rdb", Self.fixture)])
        let expected = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture)))
        let client = S3Client(configuration: try configuration(moto))
        for key in ["dumps/mixed.rdb", "dumps/with space.rdb"] {
            let reader = try client.open(S3Location(bucket: "backups", key: key))
            #expect(reader.info.size == expected.count)
            #expect(reader.info.etag?.isEmpty == false)
            // Bounded memory: never more than the range being read and the ones asked for ahead of it.
            var read: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1000)
            var ahead = 0
            while true {
                let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                if n == 0 { break }
                read += buffer[0..<n]
                ahead = max(ahead, reader.requestedUpTo - reader.position)
            }
            #expect(read == expected, "\(key)")
            #expect(ahead <= 3 * 4096 && ahead > 4096, "\(ahead) bytes asked for ahead of the reader")
            // Every byte read once (a resume, which moto_server's dropped connection can cause under load,
            // continues at the next byte: it reads nothing twice).
            #expect(reader.stats.bytesRead == expected.count)
        }
        let listed = try client.list(bucket: "backups", prefix: "dumps")
        #expect(listed.map(\.key).sorted() == ["dumps/mixed.rdb", "dumps/with space.rdb"])
        #expect(listed.allSatisfy { $0.size == expected.count })
    }

    @Test("Virtual-hosted addressing: the bucket in the Host header")
    func virtualHosted() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        var c = try S3Configuration(
            endpoint: "http://localhost:\(moto.port)", region: "us-east-1", pathStyle: false,
            credentials: S3Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey))
        c.connectHost = "127.0.0.1"
        #expect(c.hostHeader(bucket: "backups") == "backups.localhost:\(moto.port)")
        let reader = try S3Client(configuration: c).open(S3Location(bucket: "backups", key: "mixed.rdb"))
        #expect(try readAll(reader) == Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture))))
    }

    @Test("403 and 404 fail at once, naming the status, the bucket and the object; the secret is never shown")
    func refusals() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        let wrong = "wrong-secret-\(UInt32.random(in: 0...UInt32.max))"
        let started = Date()
        do {
            _ = try S3Client(configuration: try configuration(moto, secret: wrong)).open(S3Location(bucket: "backups", key: "mixed.rdb"))
            Issue.record("a wrong secret was accepted")
        } catch let e as ObjectStoreError {
            #expect(e.status == 403)
            #expect("\(e)".contains("403") && "\(e)".contains("s3://backups/mixed.rdb") && !"\(e)".contains(wrong))
        }
        do {
            _ = try S3Client(configuration: try configuration(moto)).open(S3Location(bucket: "backups", key: "nothere.rdb"))
            Issue.record("a missing object was found")
        } catch let e as ObjectStoreError {
            #expect(e.status == 404 && "\(e)".contains("nothere.rdb") && "\(e)".contains("backups"))
        }
        #expect(Date().timeIntervalSince(started) < 5, "refusals are not retried")
    }

    @Test("A connection cut mid-object resumes at the last byte received; the resumes are counted")
    func resumes() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        let expected = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture)))
        // The first three connections that pass 5000 bytes of answers (headers included) are cut there.
        let proxy = try DroppingProxy(upstreamPort: moto.port, maxCuts: 3) { _ in 5000 }
        defer { proxy.stop() }
        let client = S3Client(configuration: try configuration(moto, port: proxy.port, range: 16384))
        let reader = try client.open(S3Location(bucket: "backups", key: "mixed.rdb"))
        #expect(try readAll(reader) == expected)
        #expect(proxy.cuts == 3, "\(proxy.connections) connections")
        #expect(reader.stats.resumes == 3)
        #expect(reader.stats.lastResumeOffset > 0 && reader.stats.lastResumeOffset < expected.count)
        #expect(reader.stats.bytesRead == expected.count)
    }

    @Test("A 5xx answer is retried from the same byte and counted as a resume")
    func serviceUnavailable() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        let expected = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture)))
        let proxy = try DroppingProxy(upstreamPort: moto.port, unavailable: 2) { _ in nil }
        defer { proxy.stop() }
        let reader = try S3Client(configuration: try configuration(moto, port: proxy.port)).open(S3Location(bucket: "backups", key: "mixed.rdb"))
        #expect(try readAll(reader) == expected)
        #expect(proxy.unavailableAnswers == 2 && reader.stats.resumes == 2)
    }

    @Test("A read that makes no progress gives up at its deadline with the cause, without hanging")
    func givesUp() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        // The first connection passes 3000 bytes (the HEAD and part of a range), every later one nothing.
        let proxy = try DroppingProxy(upstreamPort: moto.port) { $0 == 0 ? 3000 : 0 }
        defer { proxy.stop() }
        var c = try configuration(moto, port: proxy.port)
        c.retryTimeout = 1
        let reader = try S3Client(configuration: c).open(S3Location(bucket: "backups", key: "mixed.rdb"))
        let started = Date()
        #expect {
            _ = try readAll(reader)
        } throws: { error in
            let text = "\(error)"
            return text.contains("gave up") && text.contains("s3://backups/mixed.rdb") && text.contains("GET bytes")
        }
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(reader.stats.resumes >= 1)
    }

    @Test("An object replaced while it is read fails clearly instead of mixing versions")
    func replacedObject() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let other = Self.repositoryRoot + "/testdata/servers/redis-7.0/strings.rdb"
        try moto.put(bucket: "backups", [("mixed.rdb", Self.fixture)])
        let reader = try S3Client(configuration: try configuration(moto)).open(S3Location(bucket: "backups", key: "mixed.rdb"))
        var buffer = [UInt8](repeating: 0, count: 1000)
        _ = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
        try moto.put(bucket: "backups", [("mixed.rdb", other)])
        #expect {
            _ = try readAll(reader)
        } throws: { error in
            "\(error)".contains("changed") && "\(error)".contains("412") && "\(error)".contains("s3://backups/mixed.rdb")
        }
        // A version pinned by an earlier check (the migrate path) is read as that version, or not at all.
        let inputs = ObjectInputs(configuration: try configuration(moto))
        inputs.pin("s3://backups/mixed.rdb", reader.info)
        #expect {
            _ = try inputs.open(path: "s3://backups/mixed.rdb", limit: 1 << 20)
        } throws: { error in
            "\(error)".contains("412")
        }
    }

    @Test("Inputs from a bucket are told apart by content: RDB, AOF, zstd, gzip")
    func sniff() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let dir = NSTemporaryDirectory() + "sniff-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let aof = Self.repositoryRoot + "/testdata/servers/redis-7.0/aof/multipart-aof-base/appendonly.aof.2.base.aof"
        try compressed(Self.fixture, "gzip", to: dir + "/mixed.rdb.gz")
        try compressed(Self.fixture, "zstd", to: dir + "/mixed.rdb.zst")
        try compressed(aof, "gzip", to: dir + "/base.aof.gz")
        try moto.put(bucket: "bkt", [("mixed.rdb", Self.fixture), ("mixed.rdb.gz", dir + "/mixed.rdb.gz"), ("zst", dir + "/mixed.rdb.zst"), ("base.aof.gz", dir + "/base.aof.gz")])
        let inputs = ObjectInputs(configuration: try configuration(moto))
        func sniff(_ key: String) throws -> ObjectSniff { try ObjectSniff.sniff(S3Location(bucket: "bkt", key: key), inputs: inputs) }
        #expect(try sniff("mixed.rdb").summary == "RDB version 10 (redis)")
        #expect(try sniff("mixed.rdb.gz").summary == "RDB version 10 (redis), gzip")
        #expect(try sniff("zst").summary == "RDB version 10 (redis), zstd")
        #expect(try sniff("base.aof.gz").summary == "AOF, gzip")
        let opened = try #require(try inputs.open(path: "s3://bkt/mixed.rdb.gz", limit: 1 << 20))
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/mixed.rdb.gz")[.size] as? Int
        #expect(opened.kind == .rdb && opened.fileSize == size)
        #expect(try inputs.open(path: "/not/an/object", limit: 1 << 20) == nil)
        // Telling what an object holds costs a HEAD and one small GET, not the ranges after it.
        let big = dir + "/big.rdb"
        let fixture = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        try Data((0..<12).flatMap { _ in fixture }).write(to: URL(fileURLWithPath: big))
        try moto.put(bucket: "bkt", [("big.rdb", big)])
        let proxy = try DroppingProxy(upstreamPort: moto.port) { _ in nil }
        defer { proxy.stop() }
        var defaults = try configuration(moto, port: proxy.port, range: 4 << 20)
        defaults.firstRangeBytes = 256 << 10
        let counted = ObjectInputs(configuration: defaults)
        #expect(try ObjectSniff.sniff(S3Location(bucket: "bkt", key: "big.rdb"), inputs: counted).info.size > 512 << 10)
        usleep(300_000)
        #expect(proxy.connections <= 2, "\(proxy.connections) connections")
    }

    func compressed(_ path: String, _ tool: String, to out: String) throws {
        let (status, _, err) = try Spawn.run("/bin/sh", ["-c", "\(tool) -c < '\(path)' > '\(out)'"])
        #expect(status == 0, "\(tool) failed: \(err)")
    }
}
