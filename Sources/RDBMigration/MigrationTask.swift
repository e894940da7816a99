#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RDBImport
import RedisWire

/// A rejected task body: what the API answers with 400. `field` is the JSON path of the culprit
/// (`backup_files.files[2].file_name`; empty for the body as a whole).
public struct MigrationTaskError: Error, CustomStringConvertible, Sendable, Equatable {
    public var field: String
    public var message: String
    /// 400 for an invalid body; the same for a valid but unsupported request (online migration).
    public var status = 400

    public init(field: String, message: String, status: Int = 400) {
        self.field = field
        self.message = message
        self.status = status
    }

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }

    /// The API-style error body.
    public var response: MigrationErrorResponse {
        MigrationErrorResponse(status: status, errorCode: "\(status)", errorField: field, errorMsg: description)
    }

    public var json: String { APIJSON.text(response) }
}

extension MigrationTaskRequest {
    /// Decodes and validates a task body (`validate()` included).
    public static func decode(_ bytes: [UInt8]) throws(MigrationTaskError) -> MigrationTaskRequest {
        let request = try decodeStructure(bytes)
        try request.validate()
        return request
    }

    /// Decodes a task body, checking only its structure: required fields, types and enum values.
    public static func decodeStructure(_ bytes: [UInt8]) throws(MigrationTaskError) -> MigrationTaskRequest {
        do {
            return try JSONDecoder().decode(MigrationTaskRequest.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw MigrationTaskError(e)
        } catch {
            throw MigrationTaskError(field: "", message: "the task body is not valid JSON (\(error))")
        }
    }

    /// The rules between fields, after decoding: non-empty names, the files of a backup import (names
    /// inside the bucket, timestamps), the source of an online migration.
    public func validate() throws(MigrationTaskError) {
        try Self.nonEmpty(taskName, "task_name")
        try Self.nonEmpty(targetInstance.id, "target_instance.id")
        switch migrationType {
        case .backupfileImport:
            if migrationMethod == .incrementalMigration {
                throw MigrationTaskError(field: "migration_method", message: "incremental_migration applies to online_migration only; a backupfile_import task imports its files in full (full_amount_migration)")
            }
            guard let backup = backupFiles else {
                throw MigrationTaskError(field: "backup_files", message: "required for backupfile_import")
            }
            if sourceInstance != nil {
                throw MigrationTaskError(field: "source_instance", message: "only for online_migration: a backupfile_import task reads its backup_files")
            }
            try backup.validate()
        case .onlineMigration:
            guard let source = sourceInstance else {
                throw MigrationTaskError(field: "source_instance", message: "required for online_migration")
            }
            if backupFiles != nil {
                throw MigrationTaskError(field: "backup_files", message: "only for backupfile_import: an online_migration task copies its source_instance")
            }
            try Self.nonEmpty(source.addrs, "source_instance.addrs")
            guard let colon = source.addrs.lastIndex(of: ":"), colon != source.addrs.startIndex,
                  Self.isPort(source.addrs[source.addrs.index(after: colon)...]) else {
                throw MigrationTaskError(field: "source_instance.addrs", message: "must be host:port (a port from 1 to 65535), not '\(source.addrs)'")
            }
        }
    }

    /// 1 to 65535 in decimal digits, without a sign or leading zeros.
    static func isPort(_ s: Substring) -> Bool {
        let u = s.utf8
        guard (1...5).contains(u.count), u.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), u.first != 0x30, let n = Int(s) else { return false }
        return n <= 65535
    }

    static func nonEmpty(_ s: String, _ field: String) throws(MigrationTaskError) {
        if s.isEmpty { throw MigrationTaskError(field: field, message: "must not be empty") }
    }
}

extension BackupFiles {
    func validate() throws(MigrationTaskError) {
        try MigrationTaskRequest.nonEmpty(bucketName, "backup_files.bucket_name")
        if bucketName.contains("/") || bucketName == "." || bucketName == ".." || bucketName.contains("\0") {
            throw MigrationTaskError(field: "backup_files.bucket_name", message: "'\(bucketName)' is not a bucket name")
        }
        guard !files.isEmpty else { throw MigrationTaskError(field: "backup_files.files", message: "names no file") }
        for (i, f) in files.enumerated() {
            let path = "backup_files.files[\(i)]."
            let name = f.fileName
            try MigrationTaskRequest.nonEmpty(name, path + "file_name")
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            if name.hasPrefix("/") || parts.contains("..") || parts.contains("") || name.contains("\0") {
                throw MigrationTaskError(field: path + "file_name", message: "'\(name)' is not a file name inside the bucket")
            }
            if let u = f.updateAt, !APITimestamp.isValid(u) {
                throw MigrationTaskError(field: path + "update_at", message: "must be 'YYYY-MM-DD HH:MM:SS', not '\(u)'")
            }
        }
    }
}

extension MigrationTaskError {
    /// The error for a body `JSONDecoder` refused, naming the field by its coding path.
    init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let ctx):
            self.init(field: Self.path(ctx.codingPath + [key]), message: "required field is missing")
        case .valueNotFound(_, let ctx):
            self.init(field: Self.path(ctx.codingPath), message: "required field is missing")
        case .typeMismatch(let type, let ctx):
            let field = Self.path(ctx.codingPath)
            let what = Self.typeName(type)
            self.init(field: field, message: field.isEmpty ? "the task body must be a JSON object" : "must be \(what)")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                let detail = ctx.underlyingError.map { " (\($0))" } ?? ""
                self.init(field: "", message: "the task body is not valid JSON: \(ctx.debugDescription)\(detail)")
            } else {
                self.init(field: Self.path(ctx.codingPath), message: ctx.debugDescription)
            }
        @unknown default:
            self.init(field: "", message: "invalid task body: \(error)")
        }
    }

    /// `backup_files.files[2].file_name` from a coding path.
    static func path(_ keys: [any CodingKey]) -> String {
        var s = ""
        for k in keys {
            if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
        }
        return s
    }

    static func typeName(_ type: Any.Type) -> String {
        if type is String.Type { return "a string" }
        if type is Int.Type || type is Double.Type { return "a number" }
        if type is Bool.Type { return "a boolean" }
        return String(describing: type).hasPrefix("Array") ? "an array" : "an object"
    }
}

/// The API's `YYYY-MM-DD HH:MM:SS` (UTC) timestamps.
public enum APITimestamp {
    public static func isValid(_ s: String) -> Bool {
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

    /// The time as `YYYY-MM-DD HH:MM:SS` in UTC.
    public static func string(_ date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { let v = v ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}

/// A validated `backupfile_import` task: what `MigrationRunner` runs.
///
/// Only `backupfile_import` with `full_amount_migration` runs here; `online_migration` tasks run with
/// `OnlineMigrationRunner` (the sync engine).
public struct MigrationTask: Sendable {
    public typealias Invalid = MigrationTaskError

    public struct Target: Sendable {
        public var id: String
        public var name: String?
        public var password: Secret?
    }

    public let request: MigrationTaskRequest
    public let backup: BackupFiles

    public var taskName: String { request.taskName }
    public var description: String? { request.description }
    public var bucketName: String { backup.bucketName }
    public var files: [BackupFile] { backup.files }
    public var target: Target {
        Target(id: request.targetInstance.id, name: request.targetInstance.name, password: request.targetInstance.password.map(Secret.init))
    }

    /// Checks that the request is one this runner can run, then validates it.
    public init(_ request: MigrationTaskRequest) throws(MigrationTaskError) {
        if request.migrationType == .onlineMigration {
            throw MigrationTaskError(field: "migration_type", message: "online_migration (copying from a live source instance) is not supported by this runner (a backupfile_import); run it with OnlineMigrationRunner")
        }
        try request.validate()
        self.request = request
        backup = request.backupFiles!  // validate() requires it for backupfile_import
    }

    /// Decodes and validates a task body. Every check that needs no file system is done here.
    public static func parse(_ bytes: [UInt8]) throws(MigrationTaskError) -> MigrationTask {
        try MigrationTask(MigrationTaskRequest.decodeStructure(bytes))
    }
}

extension ByteCount: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
}
