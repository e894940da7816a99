#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RedisWire

/// A migration task in the form of the cloud API's create-migration-task request body
/// (`POST /v2/{project_id}/migration-task`, see `MIGRATION-TASK.md`).
///
/// Only `backupfile_import` with `full_amount_migration` runs here; `online_migration` is rejected with
/// a clear message (a later piece of work), as is `incremental_migration` for backup files.
public struct MigrationTask: Sendable {
    public struct BackupFile: Sendable, Hashable {
        public var fileName: String
        /// Declared size in bytes (checked against the file), if given.
        public var size: Int?
        /// `YYYY-MM-DD HH:MM:SS`, if given (reported, not checked against the file).
        public var updateAt: String?
    }

    public struct TargetInstance: Sendable {
        public var id: String
        public var name: String?
        public var password: Secret?
    }

    public var taskName: String
    public var description: String?
    public var migrationType: String
    public var migrationMethod: String
    public var fileSource: String?
    public var bucketName: String
    public var files: [BackupFile]
    public var target: TargetInstance

    /// A rejected task body: what the API answers with 400. `field` is the JSON path of the culprit.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var field: String
        public var message: String
        /// 400 for an invalid body; the same for a valid but unsupported request (online migration).
        public var status = 400
        public var description: String { field.isEmpty ? message : "\(field): \(message)" }

        /// The API-style error body.
        public var json: String {
            var j = JSONBuilder()
            j.beginObject()
            j.field("status", status)
            j.field("error_code", "\(status)")
            j.field("error_field", field)
            j.field("error_msg", description)
            j.endObject()
            return j.text
        }
    }

    public static let migrationTypes = ["backupfile_import", "online_migration"]
    public static let migrationMethods = ["full_amount_migration", "incremental_migration"]

    /// Parses and validates a task body. Every check that needs no file system is done here.
    public static func parse(_ bytes: [UInt8]) throws -> MigrationTask {
        let body: JSONValue
        do {
            body = try JSONValue.parse(bytes)
        } catch {
            throw Invalid(field: "", message: "the task body is not valid JSON (\(error))")
        }
        guard case .object = body else { throw Invalid(field: "", message: "the task body must be a JSON object, not \(body.typeName)") }

        let taskName = try requiredString(body, "task_name")
        let description = try optionalString(body, "description")
        let type = try requiredString(body, "migration_type")
        let method = try requiredString(body, "migration_method")
        guard migrationTypes.contains(type) else {
            throw Invalid(field: "migration_type", message: "unknown value '\(type)': expected backupfile_import or online_migration")
        }
        guard migrationMethods.contains(method) else {
            throw Invalid(field: "migration_method", message: "unknown value '\(method)': expected full_amount_migration or incremental_migration")
        }
        if type == "online_migration" {
            throw Invalid(field: "migration_type", message: "online_migration (copying from a live source instance) is not supported yet; only backupfile_import tasks can run here")
        }
        if method == "incremental_migration" {
            throw Invalid(field: "migration_method", message: "incremental_migration applies to online_migration only; a backupfile_import task imports its files in full (full_amount_migration)")
        }

        guard let targetValue = body["target_instance"], targetValue != .null else {
            throw Invalid(field: "target_instance", message: "required field is missing")
        }
        guard case .object = targetValue else { throw Invalid(field: "target_instance", message: "must be an object, not \(targetValue.typeName)") }
        let target = TargetInstance(
            id: try requiredString(targetValue, "id", path: "target_instance."),
            name: try optionalString(targetValue, "name", path: "target_instance."),
            password: try optionalString(targetValue, "password", path: "target_instance.", secret: true).map { Secret($0) })

        guard let backup = body["backup_files"], backup != .null else {
            throw Invalid(field: "backup_files", message: "required for backupfile_import")
        }
        guard case .object = backup else { throw Invalid(field: "backup_files", message: "must be an object, not \(backup.typeName)") }
        let fileSource = try optionalString(backup, "file_source", path: "backup_files.")
        if let s = fileSource, s != "self_build_obs" {
            throw Invalid(field: "backup_files.file_source", message: "unknown value '\(s)': expected self_build_obs")
        }
        let bucket = try requiredString(backup, "bucket_name", path: "backup_files.")
        if bucket.contains("/") || bucket == "." || bucket == ".." || bucket.contains("\0") {
            throw Invalid(field: "backup_files.bucket_name", message: "'\(bucket)' is not a bucket name")
        }
        guard let filesValue = backup["files"], filesValue != .null else {
            throw Invalid(field: "backup_files.files", message: "required field is missing")
        }
        guard case .array(let items) = filesValue else {
            throw Invalid(field: "backup_files.files", message: "must be an array, not \(filesValue.typeName)")
        }
        guard !items.isEmpty else { throw Invalid(field: "backup_files.files", message: "names no file") }
        var files: [BackupFile] = []
        for (i, item) in items.enumerated() {
            let path = "backup_files.files[\(i)]."
            guard case .object = item else { throw Invalid(field: "backup_files.files[\(i)]", message: "must be an object, not \(item.typeName)") }
            let name = try requiredString(item, "file_name", path: path)
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            if name.hasPrefix("/") || parts.contains("..") || parts.contains("") && name != "" || name.contains("\0") {
                throw Invalid(field: path + "file_name", message: "'\(name)' is not a file name inside the bucket")
            }
            var size: Int?
            if let v = item["size"], v != .null {
                switch v {
                case .string(let s), .number(let s):
                    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else {
                        throw Invalid(field: path + "size", message: "must be a size in bytes (digits), not '\(s)'")
                    }
                    size = n
                default:
                    throw Invalid(field: path + "size", message: "must be a string of digits, not \(v.typeName)")
                }
            }
            let updateAt = try optionalString(item, "update_at", path: path)
            if let u = updateAt, !isTimestamp(u) {
                throw Invalid(field: path + "update_at", message: "must be 'YYYY-MM-DD HH:MM:SS', not '\(u)'")
            }
            files.append(BackupFile(fileName: name, size: size, updateAt: updateAt))
        }
        return MigrationTask(
            taskName: taskName, description: description, migrationType: type, migrationMethod: method,
            fileSource: fileSource, bucketName: bucket, files: files, target: target)
    }

    static func requiredString(_ o: JSONValue, _ name: String, path: String = "") throws -> String {
        guard let v = o[name], v != .null else { throw Invalid(field: path + name, message: "required field is missing") }
        guard case .string(let s) = v else { throw Invalid(field: path + name, message: "must be a string, not \(v.typeName)") }
        guard !s.isEmpty else { throw Invalid(field: path + name, message: "must not be empty") }
        return s
    }

    static func optionalString(_ o: JSONValue, _ name: String, path: String = "", secret: Bool = false) throws -> String? {
        guard let v = o[name], v != .null else { return nil }
        guard case .string(let s) = v else {
            throw Invalid(field: path + name, message: "must be a string, not \(secret ? "a non-string value" : v.typeName)")
        }
        return s
    }

    static func isTimestamp(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 19 else { return false }
        for (i, c) in u.enumerated() {
            switch i {
            case 4, 7: if c != UInt8(ascii: "-") { return false }
            case 10: if c != UInt8(ascii: " ") { return false }
            case 13, 16: if c != UInt8(ascii: ":") { return false }
            default: if c < 0x30 || c > 0x39 { return false }
            }
        }
        return true
    }

    /// A backup file found in its bucket.
    public struct ResolvedFile: Sendable {
        public var file: BackupFile
        public var path: String
        public var size: Int
    }

    /// Finds the files under `bucketRoot/bucket_name`, checking that each is there and has the declared size.
    public func resolve(bucketRoot: String) throws -> [ResolvedFile] {
        let bucketPath = bucketRoot.hasSuffix("/") ? bucketRoot + bucketName : bucketRoot + "/" + bucketName
        var st = stat()
        guard stat(bucketPath, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw Invalid(field: "backup_files.bucket_name", message: "bucket '\(bucketName)' does not exist (no folder \(bucketPath))")
        }
        var out: [ResolvedFile] = []
        for (i, f) in files.enumerated() {
            let path = bucketPath + "/" + f.fileName
            guard stat(path, &st) == 0 else {
                throw Invalid(field: "backup_files.files[\(i)].file_name", message: "'\(f.fileName)' is not in bucket '\(bucketName)'")
            }
            var size = Int(st.st_size)
            let kind = st.st_mode & S_IFMT
            if kind == S_IFDIR {
                size = Self.folderSize(path)
            } else if kind != S_IFREG {
                throw Invalid(field: "backup_files.files[\(i)].file_name", message: "'\(f.fileName)' is not a regular file")
            }
            if let declared = f.size, declared != size {
                throw Invalid(field: "backup_files.files[\(i)].size", message: "'\(f.fileName)' is declared as \(declared) bytes but has \(size)")
            }
            out.append(ResolvedFile(file: f, path: path, size: size))
        }
        return out
    }

    /// Bytes of the regular files directly in a folder (an `appendonlydir`).
    static func folderSize(_ path: String) -> Int {
        guard let d = opendir(path) else { return 0 }
        defer { closedir(d) }
        var total = 0
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var st = stat()
            if stat(path + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int(st.st_size) }
        }
        return total
    }
}

/// Runs a `backupfile_import` task: imports its files in order into the target and reports the task
/// state in the API's response form.
public final class MigrationRunner {
    public let task: MigrationTask
    public let files: [MigrationTask.ResolvedFile]
    public let target: RedisEndpoint
    public let options: ImportOptions
    /// The task id (32 hex digits, like the API's).
    public let id: String
    /// Receives each state line (`{"id","name","status"}`) as it happens.
    public var onState: ((String) -> Void)?
    public var onProgress: ((ImportProgress) -> Void)?

    /// Validates the files in the bucket (throws `MigrationTask.Invalid` before anything is written).
    /// The target's password is the task's unless `target` has one.
    public init(task: MigrationTask, bucketRoot: String, target: RedisEndpoint, options: ImportOptions) throws {
        self.task = task
        files = try task.resolve(bucketRoot: bucketRoot)
        var t = target
        if t.password == nil { t.password = task.target.password }
        self.target = t
        self.options = options
        var g = SystemRandomNumberGenerator()
        id = (0..<2).map { _ in
            let s = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }

    public func stateLine(_ status: String) -> String {
        var j = JSONBuilder()
        j.beginObject()
        j.field("id", id)
        j.field("name", task.taskName)
        j.field("status", status)
        j.endObject()
        return j.text
    }

    /// Runs the import; returns the report (its status is the task's final status).
    public func run() -> (report: ImportReport, json: String) {
        let startedAt = utcTimestamp()
        onState?(stateLine("MIGRATING"))
        let importer = Importer(target: target, options: options)
        importer.onProgress = onProgress
        let report = importer.run(files: files.map(\.path))
        let finishedAt = utcTimestamp()
        onState?(stateLine(report.status.rawValue))
        let json = report.json { j in
            j.field("id", id)
            j.field("name", task.taskName)
            j.field("task_name", task.taskName)
            j.field("description", task.description)
            j.field("migration_type", task.migrationType)
            j.field("migration_method", task.migrationMethod)
            j.key("target_instance")
            j.beginObject()
            j.field("id", task.target.id)
            j.field("name", task.target.name)
            j.field("address", target.address)
            j.endObject()
            j.key("backup_files")
            j.beginObject()
            j.field("bucket_name", task.bucketName)
            j.field("file_source", task.fileSource)
            j.key("files")
            j.beginArray()
            for (i, f) in files.enumerated() {
                j.beginObject()
                j.field("file_name", f.file.fileName)
                j.field("size", f.size)
                j.field("update_at", f.file.updateAt)
                if i < report.files.count {
                    let s = report.files[i]
                    j.field("keys", s.keysImported)
                    j.field("keys_read", s.keysRead)
                    j.field("errors", s.keysFailed + s.aofFailed)
                    j.field("keys_not_arrived", s.keysNotArrived)
                    j.field("bytes_sent", s.bytesSent)
                    j.key("seconds")
                    j.seconds(s.seconds)
                }
                j.endObject()
            }
            j.endArray()
            j.endObject()
            j.field("started_at", startedAt)
            j.field("finished_at", finishedAt)
        }
        return (report, json)
    }
}
