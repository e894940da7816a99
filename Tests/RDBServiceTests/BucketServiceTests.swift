import Foundation
import RDBTestSupport
import Testing

/// A task whose bucket is on an S3-compatible service (moto_server, signatures checked): the files are
/// read with ranged GETs straight into the import.
@Suite("Task service with an S3 bucket", .ownThreads) struct BucketServiceTests {
    @Test("A backup import from an S3-compatible bucket: SUCCESS with the files' digest; a missing object fails the task naming it")
    func s3Bucket() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let rdb = try Fixtures.rdb(keys: 3000, prefix: "r:")
        let aof = try Fixtures.aof(keys: 500)
        defer { Fixtures.remove(rdb.path, aof.path) }
        try moto.put(bucket: "bucket-lmz", [("dump.rdb", rdb.path), ("appendonly03.aof", aof.path)])
        let expected = try TestServer(.redis70)
        defer { expected.stop() }
        for f in [rdb.path, aof.path] {
            let (status, _, err) = try TestServer.run(try TestServer.rdbcatPath(), ["import", f, "--to", expected.url, "--no-progress"])
            #expect(status == 0, "\(err)")
        }
        let target = try TestServer(.redis70)
        let dir = NSTemporaryDirectory() + "rdbcat-s3-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { Fixtures.remove(dir) }
        let credentials = dir + "/credentials"
        try "AWS_ACCESS_KEY_ID=\(moto.accessKeyID)\nAWS_SECRET_ACCESS_KEY=\(moto.secretAccessKey)\n"
            .write(toFile: credentials, atomically: true, encoding: .utf8)
        var config = ServiceTests.config(targets: [ServiceTests.targetID: target], bucket: nil)
        config["buckets"] = ["bucket-lmz": ["endpoint": moto.endpoint, "region": "us-east-1", "path_style": true, "credentials_file": credentials]]
        let service = try ServiceProcess(config: config)
        defer { service.kill9() }
        let id = try await service.create("p1", ServiceTests.importBody(["dump.rdb", "appendonly03.aof"]))
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "SUCCESS", "\(task)")
        #expect(try target.digest() == expected.digest())
        #expect(task[path: "report.backup_files.endpoint"] as? String == moto.endpoint)
        let missing = try await service.create("p1", ServiceTests.importBody(["nope.rdb"]))
        let failed = try await service.wait("p1", missing)
        #expect(failed["status"] as? String == "FAILED")
        #expect((failed["failure"] as? String)?.contains("nope.rdb") == true, "\(failed)")
        #expect(!service.log.contains(moto.secretAccessKey))
    }
}
