import Foundation
import Testing
import RDBImport
@testable import RDBMigration

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

