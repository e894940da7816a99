#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where a sync stands, kept in a file (`--checkpoint FILE`) so that a restarted run continues with
/// `PSYNC <replid> <offset+1>`: the source's replication id, the offset applied to the target (every
/// command before it acknowledged), the source's database the stream is in at that offset (the master
/// does not send `SELECT` again after `+CONTINUE`), and the target databases written so far (flushed
/// if the source can no longer continue and a full resync has to start over).
public struct SyncCheckpoint: Codable, Sendable, Equatable {
    public var replid: String
    public var offset: Int64
    public var db: Int
    public var databases: [Int]
    public var source: String

    public init(replid: String, offset: Int64, db: Int, databases: [Int], source: String) {
        self.replid = replid
        self.offset = offset
        self.db = db
        self.databases = databases
        self.source = source
    }

    public static func load(_ path: String) throws -> SyncCheckpoint? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        if data.isEmpty { return nil }
        do {
            return try JSONDecoder().decode(SyncCheckpoint.self, from: data)
        } catch {
            throw SyncError("the checkpoint \(path) is not readable (\(error)); remove it to start with a full sync")
        }
    }

    /// Writes the file atomically (a temporary file renamed over it).
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = try enc.encode(self)
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw SyncError("cannot write the checkpoint \(tmp)")
        }
        if rename(tmp, path) != 0 {
            throw SyncError("cannot rename the checkpoint to \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// A sync that cannot start or go on, with the reason.
public struct SyncError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
