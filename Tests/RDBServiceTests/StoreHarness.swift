import Foundation
import Logging
import RDBMigration
import RDBService
import RDBTestSupport

/// The two task stores the contract tests run against.
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    var description: String { rawValue }
}

/// A fresh, empty store location of one kind: a new SQLite file, or a new database on the test process's
/// PostgreSQL server (which must start: when it cannot, the test fails).
struct StoreLocation: Sendable {
    let kind: StoreKind
    /// The URL `openTaskStore` takes.
    let url: String
    /// The SQLite file, or the PostgreSQL database name.
    let name: String

    init(_ kind: StoreKind) throws {
        self.kind = kind
        switch kind {
        case .sqlite:
            name = NSTemporaryDirectory() + "rdbcat-store-\(UUID().uuidString).sqlite"
            url = "sqlite:" + name
        case .postgres:
            let server = try PostgresServer.shared()
            name = try server.createDatabase()
            url = server.url(database: name, password: "not-checked")
        }
    }

    func open() async throws -> any TaskStore {
        try await openTaskStore(url, logger: Logger(label: "rdbcat.tests.store"))
    }

    /// Runs SQL on the store's data directly (to corrupt a row).
    func execute(_ sql: String) throws {
        switch kind {
        case .sqlite:
            let (status, _, err) = try Spawn.run("/usr/bin/env", ["sqlite3", name, sql])
            guard status == 0 else { throw TaskStoreError("sqlite3 \(name) failed (\(status)): \(err)") }
        case .postgres:
            try PostgresServer.shared().psql(name, sql)
        }
    }

    /// Removes what the location holds (the SQLite file and its WAL; a database is left to the server's end).
    func remove() {
        guard kind == .sqlite else { return }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: name + suffix) }
    }
}

/// Opens a fresh store of `kind`, runs `body` with it, and closes it (also when `body` throws).
func withStore(_ kind: StoreKind, _ body: (any TaskStore, StoreLocation) async throws -> Void) async throws {
    let location = try StoreLocation(kind)
    defer { location.remove() }
    let store = try await location.open()
    do {
        try await body(store, location)
    } catch {
        try? await store.close()
        throw error
    }
    try await store.close()
}

/// A queued (MIGRATING, unclaimed) task.
func makeTask(_ id: String, project: String = "p1", name: String = "task", target: String = "t-1", createdAt: Double) -> TaskRecord {
    TaskRecord(id: id, projectID: project, name: name, request: #"{"task_name":"\#(name)"}"#, sealedSecrets: nil,
               target: target, createdAt: createdAt)
}
