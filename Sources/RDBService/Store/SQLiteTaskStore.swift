import GRDB
import RDBMigration

/// Tasks in one SQLite file (one service): a GRDB `DatabasePool` in WAL mode (readers never wait for the
/// writer), the table created by a `DatabaseMigrator`. Every method is one GRDB read or write block, so one
/// transaction; SQLite runs write transactions one at a time, which is what makes `claim` safe.
public final class SQLiteTaskStore: TaskStore {
    let pool: DatabasePool
    let path: String

    /// Opens (creating when missing) the database file at `path`. Call `prepare()` before use.
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "rdbcat.tasks"
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw TaskStoreError("cannot open the SQLite task store \(path): \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: migration_tasks") { db in
            try db.create(table: "migration_tasks") { t in
                t.primaryKey("id", .text)
                t.column("project_id", .text).notNull()
                t.column("name", .text).notNull()
                t.column("request", .text).notNull()
                t.column("sealed_secrets", .text)
                t.column("target", .text).notNull()
                t.column("status", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("created_at", .double).notNull()
                t.column("updated_at", .double).notNull()
                t.column("started_at", .double)
                t.column("finished_at", .double)
                t.column("progress", .text)
                t.column("checkpoint", .text)
                t.column("report", .text)
                t.column("failure", .text)
                t.column("stop_requested", .boolean).notNull().defaults(to: false)
                t.column("owner", .text)
                t.column("lease_until", .double)
                t.column("attempts", .integer).notNull().defaults(to: 0)
            }
            for (name, columns) in TaskSQL.indexes {
                try db.execute(sql: "CREATE INDEX \(name) ON migration_tasks (\(columns))")
            }
        }
        return migrator
    }

    public func prepare() async throws {
        try await run("prepare") { [pool] in try Self.migrator.migrate(pool) }
    }

    public func insert(_ task: TaskRecord) async throws {
        try await write("insert") { db in try Self.execute(db, TaskSQL.insert(task)) }
    }

    public func task(project: String, id: String) async throws -> TaskRecord? {
        try await read("task") { db in try Self.records(db, TaskSQL.task(project: project, id: id)).first }
    }

    public func list(project: String, name: String?, offset: Int, limit: Int) async throws -> (count: Int, tasks: [TaskRecord]) {
        try await read("list") { db in
            let count = try Self.count(db, TaskSQL.listCount(project: project, name: name))
            let tasks = try Self.records(db, TaskSQL.listPage(project: project, name: name, offset: offset, limit: limit))
            return (count, tasks)
        }
    }

    public func delete(project: String, id: String) async throws -> TaskDeletion {
        try await write("delete") { db in
            if try !Self.rows(db, TaskSQL.deleteFinished(project: project, id: id)).isEmpty { return .deleted }
            return try Self.records(db, TaskSQL.task(project: project, id: id)).isEmpty ? .notFound : .running
        }
    }

    public func requestStop(project: String, id: String, now: Double) async throws -> TaskRecord? {
        try await write("requestStop") { db in
            try Self.execute(db, TaskSQL.terminateUnheld(project: project, id: id, now: now))
            try Self.execute(db, TaskSQL.flagStop(project: project, id: id, now: now))
            return try Self.records(db, TaskSQL.task(project: project, id: id)).first
        }
    }

    public func claim(owner: String, now: Double, lease: Double) async throws -> TaskRecord? {
        try await write("claim") { db in try Self.records(db, TaskSQL.claim(owner: owner, now: now, lease: lease)).first }
    }

    public func takeBack(id: String, owner: String) async throws {
        try await write("takeBack") { db in try Self.execute(db, TaskSQL.takeBack(id: id, owner: owner)) }
    }

    public func renew(id: String, owner: String, now: Double, lease: Double, update: TaskUpdate) async throws -> Bool? {
        try await write("renew") { db in
            let rows = try Self.rows(db, TaskSQL.renew(id: id, owner: owner, now: now, lease: lease, update: update))
            guard let row = rows.first.map(SQLiteRow.init) else { return nil }
            return try TaskRowReader(row: row, id: id, columns: ["stop_requested"]).required(0, row.bool)
        }
    }

    public func finish(id: String, owner: String, status: TaskStatus, report: String?, failure: String?, now: Double) async throws -> Bool {
        let statement = try TaskSQL.finish(id: id, owner: owner, status: status, report: report, failure: failure, now: now)
        return try await write("finish") { db in try !Self.rows(db, statement).isEmpty }
    }

    public func release(owner: String) async throws {
        try await write("release") { db in try Self.execute(db, TaskSQL.release(owner: owner)) }
    }

    public func countByStatus() async throws -> [TaskStatus: Int] {
        try await read("countByStatus") { db in
            var counts: [TaskStatus: Int] = [:]
            for row in try Self.rows(db, TaskSQL.countByStatus).map(SQLiteRow.init) {
                let reader = TaskRowReader(row: row, id: nil, columns: ["status", "COUNT(*)"])
                let status = try TaskSQL.status(reader.required(0, row.text), in: "a count")
                counts[status, default: 0] += try reader.required(1, row.integer)
            }
            return counts
        }
    }

    public func close() async throws {
        try pool.close()
    }

    // MARK: running statements

    private func run<T: Sendable>(_ operation: String, _ body: @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TaskStoreError {
            throw error
        } catch {
            throw TaskStoreError("SQLite task store \(path): \(operation) failed: \(error)")
        }
    }

    private func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await run(operation) { [pool] in try await pool.write(body) }
    }

    private func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await run(operation) { [pool] in try await pool.read(body) }
    }

    private static func arguments(_ binds: [SQLValue]) -> StatementArguments {
        StatementArguments(binds.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .text(let s): return s
            case .real(let d): return d
            case .integer(let i): return i
            case .bool(let b): return b
            }
        })
    }

    private static func execute(_ db: Database, _ s: SQLStatement) throws {
        try db.execute(sql: s.sqliteSQL, arguments: arguments(s.binds))
    }

    private static func rows(_ db: Database, _ s: SQLStatement) throws -> [Row] {
        try Row.fetchAll(db, sql: s.sqliteSQL, arguments: arguments(s.binds))
    }

    private static func records(_ db: Database, _ s: SQLStatement) throws -> [TaskRecord] {
        try rows(db, s).map { try TaskRecord(reading: SQLiteRow(row: $0)) }
    }

    private static func count(_ db: Database, _ s: SQLStatement) throws -> Int {
        guard let row = try rows(db, s).first.map(SQLiteRow.init) else { return 0 }
        return try TaskRowReader(row: row, id: nil, columns: ["COUNT(*)"]).required(0, row.integer)
    }
}

/// A GRDB row, read by position (GRDB throws on a value of another type).
struct SQLiteRow: TaskRowColumns {
    let row: Row

    var count: Int { row.count }
    func text(_ index: Int) throws -> String? { try row.decode(String?.self, atIndex: index) }
    func real(_ index: Int) throws -> Double? { try row.decode(Double?.self, atIndex: index) }
    func integer(_ index: Int) throws -> Int? { try row.decode(Int?.self, atIndex: index) }
    func bool(_ index: Int) throws -> Bool? { try row.decode(Bool?.self, atIndex: index) }
}
