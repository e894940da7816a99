#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The create-migration-task API's request and response bodies (`POST /v2/{project_id}/migration-task`,
/// see MIGRATION-TASK.md), as `Codable` types shared by the CLI and a service.
///
/// Decoding checks the structure (required fields, types, known enum values) and names the field of the
/// first problem by its path (`backup_files.files[2].file_name`); `MigrationTaskRequest.validate()` adds
/// the rules between fields. `MigrationTaskRequest.decode(_:)` does both and throws `MigrationTaskError`.
public struct MigrationTaskRequest: Codable, Sendable, Equatable {
    public var taskName: String
    public var description: String?
    public var migrationType: MigrationType
    public var migrationMethod: MigrationMethod
    /// For `backupfile_import`: the files to import.
    public var backupFiles: BackupFiles?
    /// For `online_migration`: how source and target connect.
    public var networkType: NetworkType?
    /// For `online_migration` (then required): the source.
    public var sourceInstance: SourceInstance?
    public var targetInstance: TargetInstance

    enum CodingKeys: String, CodingKey {
        case taskName = "task_name", description, migrationType = "migration_type", migrationMethod = "migration_method"
        case backupFiles = "backup_files", networkType = "network_type", sourceInstance = "source_instance"
        case targetInstance = "target_instance"
    }
}

public enum MigrationType: String, Codable, Sendable, CaseIterable, APIValue {
    case backupfileImport = "backupfile_import"
    case onlineMigration = "online_migration"
}

public enum MigrationMethod: String, Codable, Sendable, CaseIterable, APIValue {
    case fullAmountMigration = "full_amount_migration"
    case incrementalMigration = "incremental_migration"
}

public enum NetworkType: String, Codable, Sendable, CaseIterable, APIValue {
    case vpc, vpn
}

public enum FileSource: String, Codable, Sendable, CaseIterable, APIValue {
    /// An object-storage bucket the customer owns (here: a folder per bucket).
    case selfBuildOBS = "self_build_obs"
}

/// A task's state, as the API reports it.
public enum TaskStatus: String, Codable, Sendable, CaseIterable, APIValue {
    case migrating = "MIGRATING"
    case success = "SUCCESS"
    case failed = "FAILED"
    /// Stopped on request before it finished.
    case terminated = "TERMINATED"
}

public struct BackupFiles: Codable, Sendable, Equatable {
    public var fileSource: FileSource?
    public var bucketName: String
    public var files: [BackupFile]

    enum CodingKeys: String, CodingKey {
        case fileSource = "file_source", bucketName = "bucket_name", files
    }
}

public struct BackupFile: Codable, Sendable, Hashable {
    public var fileName: String
    /// Declared size in bytes (checked against the file), if given. Written as a string of digits, as the
    /// API does; a JSON number of bytes is read too.
    public var size: ByteCount?
    /// `YYYY-MM-DD HH:MM:SS`, if given (reported, not checked against the file).
    public var updateAt: String?

    enum CodingKeys: String, CodingKey {
        case fileName = "file_name", size, updateAt = "update_at"
    }

    public init(fileName: String, size: Int? = nil, updateAt: String? = nil) {
        self.fileName = fileName
        self.size = size.map { ByteCount($0) }
        self.updateAt = updateAt
    }
}

/// A size in bytes, written as a string of digits (`"size": "1024"`).
public struct ByteCount: Codable, Sendable, Hashable {
    public var value: Int
    public init(_ value: Int) { self.value = value }
    /// The largest size a body may declare (15 digits).
    public static let largest = 999_999_999_999_999

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            guard (1...15).contains(s.utf8.count), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "must be a size in bytes (1 to 15 digits), not '\(s)'")
            }
            value = n
        } else if let n = try? c.decode(Int.self), n >= 0, n <= Self.largest {
            value = n
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "must be a size in bytes (a string of digits)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

public struct SourceInstance: Codable, Sendable, Equatable {
    /// `host:port` of the source.
    public var addrs: String
    public var password: String?
}

public struct TargetInstance: Codable, Sendable, Equatable {
    public var id: String
    public var name: String?
    public var password: String?
}

/// The 200 answer: the task's id, name and status (`{"id","name","status"}`, also each state line).
public struct MigrationTaskResponse: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: TaskStatus

    public init(id: String, name: String, status: TaskStatus) {
        self.id = id
        self.name = name
        self.status = status
    }

    /// A new task id: 32 random hex digits, like the API's.
    public static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let s = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }
}

/// The 400 answer: which field is wrong and why.
public struct MigrationErrorResponse: Codable, Sendable, Equatable {
    public var status: Int
    public var errorCode: String
    /// The JSON path of the culprit (`backup_files.files[1].size`; empty for the body as a whole).
    public var errorField: String
    public var errorMsg: String

    enum CodingKeys: String, CodingKey {
        case status, errorCode = "error_code", errorField = "error_field", errorMsg = "error_msg"
    }
}

/// A string enum of the API: an unknown value is an error naming the accepted ones.
public protocol APIValue: RawRepresentable<String>, CaseIterable, Decodable {}

extension APIValue {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = Self(rawValue: s) else {
            let known = Self.allCases.map(\.rawValue)
            let list = known.count == 1 ? known[0] : known.dropLast().joined(separator: ", ") + " or " + known.last!
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown value '\(s)': expected \(list)")
        }
        self = v
    }
}

extension MigrationTaskResponse {
    /// The one-line JSON form (`{"id":…,"name":…,"status":…}`).
    public var json: String { APIJSON.text(self) }
}

/// JSON text of the API's bodies: sorted keys, slashes as they are.
enum APIJSON {
    static func text<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? e.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
