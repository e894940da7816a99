import Foundation
import Testing
import RDBMigration

/// The Codable task model: bad bodies name their field by its JSON path; good ones round-trip.
@Suite("Migration task model")
struct TaskModelTests {
    static let backup = """
        {"backup_files":{"bucket_name":"bucket-lmz","file_source":"self_build_obs",
          "files":[{"file_name":"appendonly03.aof"},{"file_name":"a.rdb","size":"12","update_at":"2024-06-01 10:00:00"},
                   {"file_name":"b.rdb.zst","size":7}]},
         "migration_method":"full_amount_migration","migration_type":"backupfile_import",
         "target_instance":{"id":"318ed365-3c1b-42d7-a5b6-663dded628a0"},"task_name":"lmd-test"}
        """
    static let online = """
        {"task_name":"lmd-test","description":"Test","migration_type":"online_migration",
         "migration_method":"full_amount_migration","network_type":"vpc",
         "source_instance":{"addrs":"192.168.1.135:6379","password":"xxxxxx"},
         "target_instance":{"name":"dcs-test","id":"4cd5dbb8-aacd-4603-b817-3e97d48c7a20"}}
        """

    func error(_ body: String) -> MigrationTaskError? {
        do {
            _ = try MigrationTaskRequest.decode(Array(body.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func bothExamplesDecode() throws {
        let b = try MigrationTaskRequest.decode(Array(Self.backup.utf8))
        #expect(b.migrationType == .backupfileImport && b.backupFiles?.fileSource == .selfBuildOBS)
        #expect(b.backupFiles?.files.map(\.size) == [nil, ByteCount(12), ByteCount(7)])
        let o = try MigrationTaskRequest.decode(Array(Self.online.utf8))
        #expect(o.migrationType == .onlineMigration && o.networkType == .vpc && o.sourceInstance?.addrs == "192.168.1.135:6379")
        #expect(o.targetInstance.name == "dcs-test" && o.backupFiles == nil)
        // A backup-import task refuses it with the field named (OnlineMigrationRunner runs it).
        #expect(throws: MigrationTaskError(field: "migration_type", message: "online_migration (copying from a live source instance) is not supported by this runner (a backupfile_import); run it with OnlineMigrationRunner")) {
            _ = try MigrationTask(o)
        }
    }

    @Test func roundTrips() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for body in [Self.backup, Self.online] {
            let request = try MigrationTaskRequest.decode(Array(body.utf8))
            let again = try MigrationTaskRequest.decode(Array(try encoder.encode(request)))
            #expect(again == request)
        }
        // Sizes are written as the API writes them: strings of digits.
        let text = String(decoding: try encoder.encode(BackupFile(fileName: "x", size: 42)), as: UTF8.self)
        #expect(text == #"{"file_name":"x","size":"42"}"#)
        for status in TaskStatus.allCases {
            let r = MigrationTaskResponse(id: "8aa6999e71cb638b0171f485f5266ef0", name: "lmd-test", status: status)
            #expect(try JSONDecoder().decode(MigrationTaskResponse.self, from: Data(r.json.utf8)) == r)
            #expect(r.json.contains(#""status":"\#(status.rawValue)""#))
        }
        #expect(TaskStatus.allCases.map(\.rawValue) == ["MIGRATING", "SUCCESS", "FAILED", "TERMINATED"])
        let e = MigrationTaskError(field: "backup_files.files[2].file_name", message: "must not be empty")
        #expect(try JSONDecoder().decode(MigrationErrorResponse.self, from: Data(e.json.utf8)) == e.response)
    }

    @Test("Each bad body names its field by path", arguments: [
        (#""file_name":"appendonly03.aof""#, #""name":"appendonly03.aof""#, "backup_files.files[0].file_name", "missing"),
        (#""size":7"#, #""size":"7 KB""#, "backup_files.files[2].size", "digits"),
        (#""size":7"#, #""size":-7"#, "backup_files.files[2].size", "size in bytes"),
        (#""size":7"#, #""size":[7]"#, "backup_files.files[2].size", "size in bytes"),
        (#""size":"12""#, #""size":"12","update_at":"yesterday""#, "backup_files.files[1].update_at", "YYYY-MM-DD"),
        (#"{"file_name":"b.rdb.zst","size":7}"#, #""b.rdb.zst""#, "backup_files.files[2]", "object"),
        (#"{"file_name":"b.rdb.zst","size":7}"#, #"{"file_name":""}"#, "backup_files.files[2].file_name", "empty"),
        (#"{"file_name":"b.rdb.zst","size":7}"#, #"{"file_name":"../x"}"#, "backup_files.files[2].file_name", "inside the bucket"),
        (#""file_source":"self_build_obs""#, #""file_source":"s3""#, "backup_files.file_source", "unknown value 's3'"),
        (#""bucket_name":"bucket-lmz","#, "", "backup_files.bucket_name", "missing"),
        (#""bucket_name":"bucket-lmz""#, #""bucket_name":null"#, "backup_files.bucket_name", "missing"),
        (#""bucket_name":"bucket-lmz""#, #""bucket_name":"a/b""#, "backup_files.bucket_name", "not a bucket name"),
        (#""id":"318ed365-3c1b-42d7-a5b6-663dded628a0""#, #""id":318"#, "target_instance.id", "string"),
        (#""target_instance":{"id":"318ed365-3c1b-42d7-a5b6-663dded628a0"}"#, #""target_instance":[]"#, "target_instance", "object"),
        (#""migration_type":"backupfile_import""#, #""migration_type":"tape""#, "migration_type", "expected backupfile_import or online_migration"),
        (#""full_amount_migration""#, #""incremental_migration""#, "migration_method", "online_migration only"),
        (#""task_name":"lmd-test""#, #""task_name":"""#, "task_name", "empty"),
        (#""task_name":"lmd-test""#, #""task_name":true"#, "task_name", "string"),
    ])
    func fieldPaths(_ replace: String, _ with: String, _ field: String, _ says: String) throws {
        let body = Self.backup.replacingOccurrences(of: replace, with: with)
        #expect(body != Self.backup)
        let e = error(body)
        #expect(e?.field == field, "\(e.map { "\($0)" } ?? "accepted")")
        #expect(e?.message.contains(says) == true, "\(e.map { "\($0)" } ?? "accepted")")
    }

    @Test func onlineBodies() {
        func online(_ edit: (String) -> String) -> MigrationTaskError? { error(edit(Self.online)) }
        #expect(online { $0.replacingOccurrences(of: #""addrs":"192.168.1.135:6379","#, with: "") }?.field == "source_instance.addrs")
        #expect(online { $0.replacingOccurrences(of: "192.168.1.135:6379", with: "192.168.1.135") }?.field == "source_instance.addrs")
        #expect(online { $0.replacingOccurrences(of: #""vpc""#, with: #""lan""#) }?.field == "network_type")
        let noSource = online { $0.replacingOccurrences(of: #""source_instance":{"addrs":"192.168.1.135:6379","password":"xxxxxx"},"#, with: "") }
        #expect(noSource?.field == "source_instance" && noSource?.message.contains("required") == true)
        // A password of the wrong type is named, never quoted.
        let pw = online { $0.replacingOccurrences(of: #""password":"xxxxxx""#, with: #""password":987654"#) }
        #expect(pw?.field == "source_instance.password" && pw?.description.contains("987654") == false)
    }

    @Test func notAnObjectOrNotJSON() {
        #expect(error("[1]")?.field == "")
        #expect(error("{")?.message.contains("JSON") == true)
        #expect(error("")?.field == "")
    }
}
