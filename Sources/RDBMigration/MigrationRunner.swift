#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ObjectStore
import RDBImport
import RDBKit
import RDBSinks
import RedisWire

extension MigrationTask {
    /// A backup file found in its bucket.
    public struct ResolvedFile: Sendable {
        public var file: BackupFile
        public var path: String
        public var size: Int
    }

    /// Finds the files under `bucketRoot/bucket_name`, checking that each is there and has the declared size.
    public func resolve(bucketRoot: String) throws -> [ResolvedFile] {
        try resolve(bucketPath: bucketRoot.hasSuffix("/") ? bucketRoot + bucketName : bucketRoot + "/" + bucketName)
    }

    /// Finds the files in the bucket's folder `bucketPath`, checking that each is there and has the declared size.
    public func resolve(bucketPath: String) throws -> [ResolvedFile] {
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
            if let declared = f.size?.value, declared != size {
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
/// state in the API's response form. The bucket is a local folder (`bucketRoot`) or an object store
/// (`objects`: S3-compatible, read as ranged GETs straight into the decoder).
public final class MigrationRunner {
    public let task: MigrationTask
    public let files: [MigrationTask.ResolvedFile]
    public let target: RedisEndpoint
    public let options: ImportOptions
    /// The object store the files are read from (nil: a local folder).
    public let objects: ObjectInputs?
    /// For an object store: what the check of each file found.
    public let checks: [MigrationTask.ObjectCheck]
    /// The task id (32 hex digits, like the API's; a new one unless the caller has one).
    public var id: String
    /// Receives each state line (`{"id","name","status"}`) as it happens.
    public var onState: ((String) -> Void)?
    public var onProgress: ((ImportProgress) -> Void)?
    /// The files before this index were imported by an earlier run of the task (a resumed task): they are
    /// not read again, and the report lists them as `resumed_past`.
    public var firstFile = 0
    /// Stops the import between keys (`stop()`): the task ends TERMINATED.
    public let stopRequest = StopRequest()

    /// Validates the files in the bucket (throws `MigrationTask.Invalid` before anything is written).
    /// The target's password is the task's unless `target` has one.
    public convenience init(task: MigrationTask, bucketRoot: String, target: RedisEndpoint, options: ImportOptions) throws {
        try self.init(task: task, bucketPath: bucketRoot.hasSuffix("/") ? bucketRoot + task.bucketName : bucketRoot + "/" + task.bucketName,
                      target: target, options: options)
    }

    /// The bucket is the folder `bucketPath`.
    public init(task: MigrationTask, bucketPath: String, target: RedisEndpoint, options: ImportOptions) throws {
        self.task = task
        files = try task.resolve(bucketPath: bucketPath)
        objects = nil
        checks = []
        self.target = Self.withPassword(target, task)
        self.options = options
        id = MigrationTaskResponse.newID()
    }

    /// Checks every file in an object-store bucket (`MigrationTask.check`); the problems found make `run()` end
    /// FAILED before it connects to the target.
    public init(task: MigrationTask, objects: ObjectInputs, target: RedisEndpoint, options: ImportOptions) {
        self.task = task
        self.objects = objects
        checks = task.check(objects: objects, decoder: options.decoder)
        files = checks.map { MigrationTask.ResolvedFile(file: $0.file, path: $0.path, size: $0.sniff?.info.size ?? 0) }
        self.target = Self.withPassword(target, task)
        self.options = options
        id = MigrationTaskResponse.newID()
    }

    /// Every problem the checks found (empty for a local folder, whose problems throw in `init`).
    public var problems: [String] { checks.flatMap(\.problems) }

    static func withPassword(_ target: RedisEndpoint, _ task: MigrationTask) -> RedisEndpoint {
        var t = target
        if t.password == nil { t.password = task.target.password }
        return t
    }

    public func state(_ status: TaskStatus) -> MigrationTaskResponse {
        MigrationTaskResponse(id: id, name: task.taskName, status: status)
    }

    public func stateLine(_ status: TaskStatus) -> String { state(status).json }

    /// Stops the import between keys, from any thread; `run()` then returns with the task TERMINATED.
    public func stop() { stopRequest.set() }

    /// The task's status for an import's outcome: a stop on request is TERMINATED; a key written without
    /// part of its data (LOSSY) fails the task, its report says which.
    public static func taskStatus(_ report: ImportReport) -> TaskStatus {
        switch report.status {
        case .success: .success
        case .stopped: .terminated
        case .failed, .lossy: .failed
        }
    }

    /// Runs the import; returns the report (its status is the task's final status).
    public func run() -> (report: ImportReport, json: String) {
        let startedAt = APITimestamp.string()
        let importer = Importer(target: target, options: options, stopRequest: stopRequest)
        let skipped = min(firstFile, files.count)
        let report: ImportReport
        let problems = self.problems
        if !problems.isEmpty {
            // The files failed their checks: nothing is sent (no connection is made).
            report = importer.failedEarly(
                "\(problems.count) problem\(problems.count == 1 ? "" : "s") with the files in bucket '\(task.bucketName)', nothing was imported: "
                    + problems.joined(separator: "; "), files: files.map(\.path))
        } else {
            onState?(stateLine(.migrating))
            importer.onProgress = onProgress
            importer.opener = objects?.opener
            report = importer.run(files: files.dropFirst(skipped).map(\.path))
        }
        let finishedAt = APITimestamp.string()
        let status = Self.taskStatus(report)
        onState?(stateLine(status))
        let json = report.json { j in
            task.request.writeIdentity(&j, id: id, targetAddress: target.address)
            j.key("backup_files")
            j.beginObject()
            j.field("bucket_name", task.bucketName)
            j.field("file_source", task.backup.fileSource?.rawValue)
            if let objects {
                j.field("endpoint", objects.client.configuration.endpoint)
                j.field("resumes", objects.resumes)
                j.key("problems")
                j.beginArray()
                for p in problems { j.string(p) }
                j.endArray()
            }
            j.field("resumed_past", skipped)
            j.key("files")
            j.beginArray()
            for (i, f) in files.enumerated() {
                j.beginObject()
                j.field("file_name", f.file.fileName)
                j.field("size", f.size)
                j.field("update_at", f.file.updateAt)
                if i < checks.count { writeObject(checks[i], &j) }
                if i < skipped {
                    j.field("state", "imported by an earlier run")
                } else if i - skipped < report.files.count {
                    let s = report.files[i - skipped]
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
            j.field("task_status", status.rawValue)
            j.field("started_at", startedAt)
            j.field("finished_at", finishedAt)
        }
        return (report, json)
    }
}

extension MigrationTaskRequest {
    /// What a task's report starts with, as the API names it: id, names, description, type, method and the
    /// target instance (with the address it was reached at).
    func writeIdentity(_ j: inout JSONBuilder, id: String, targetAddress: String) {
        j.field("id", id)
        j.field("name", taskName)
        j.field("task_name", taskName)
        j.field("description", description)
        j.field("migration_type", migrationType.rawValue)
        j.field("migration_method", migrationMethod.rawValue)
        j.key("target_instance")
        j.beginObject()
        j.field("id", targetInstance.id)
        j.field("name", targetInstance.name)
        j.field("address", targetAddress)
        j.endObject()
    }
}
