import Logging
import PostgresNIO
import RDBMigration

/// Tasks in PostgreSQL, shared by several service processes. A `PostgresClient` (a connection pool) runs in
/// a task this store starts at `init` and cancels at `close()`. Every method is one transaction.
///
/// Why `claim` is safe with many processes claiming at once: every claim and every renewal first takes the
/// transaction-scoped advisory lock `claimLock` (`pg_advisory_xact_lock`, released at commit or rollback), so
/// they run one after another and each one's statement (READ COMMITTED: a snapshot per statement, taken
/// after the lock) sees everything the previous ones committed. Without it:
/// - the target check ("no other task of this target holds a live lease") reads rows the statement does not
///   update: a late renewal reviving task A's lapsed lease and a claim of task B of the same target, each
///   not seeing the other's uncommitted row, would both pass it (two live leases on one target);
/// - claims racing for the same oldest row would all but one find nothing (PostgreSQL re-checks the row
///   after the winner commits and skips it), so a worker would be told "nothing to do" while tasks wait.
/// Nothing else creates a lease (finish, release and stop only clear one), so serialising claim and renew
/// is all the invariant needs. The claim itself is one `UPDATE … WHERE id = (SELECT …)`, whose outer
/// conditions PostgreSQL re-checks on the newest row version if a concurrent stop changed the row.
public final class PostgresTaskStore: TaskStore {
    /// The advisory lock every claim and renewal takes (any constant shared by all processes).
    static let claimLock: Int64 = 0x7264_6263_6174_0001
    /// The advisory lock `prepare()` takes, so two processes starting together do not both create the table.
    static let prepareLock: Int64 = 0x7264_6263_6174_0002

    let client: PostgresClient
    /// For the one direct connection `prepare()` opens first.
    let connection: PostgresConnection.Configuration
    let logger: Logger
    /// Limits set on every session, so that the store's calls end even when the database holds them up: a
    /// statement that runs too long, or waits too long for a lock (the advisory locks of claims and of
    /// `prepare`, held by a stuck transaction: lock waits count toward the statement's time), and a
    /// transaction left open by a client that went away. (A query in flight is not ended by cancelling its
    /// task; these make the server end it.) Generous: on a loaded machine two services preparing at once
    /// waited more than 10 s for the other's table creation (a 10 s `lock_timeout` failed CI's claim-race test).
    static let sessionLimits: [(String, String)] = [
        ("statement_timeout", "120s"), ("idle_in_transaction_session_timeout", "120s"),
    ]

    /// `host:port/database` (never the password), for errors.
    let place: String
    private let runner: Task<Void, Never>

    /// A store on `database` at `host:port`, without TLS. The client starts at once (connections are opened on
    /// first use); call `prepare()` before use and `close()` at the end.
    public init(host: String, port: Int = 5432, username: String, password: String?, database: String, logger: Logger) {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        configuration.options.additionalStartupParameters = Self.sessionLimits
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        var direct = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        direct.options.additionalStartupParameters = Self.sessionLimits
        connection = direct
        self.logger = logger
        place = "\(host):\(port)/\(database)"
        runner = Task { [client] in await client.run() }
    }

    /// Connects once directly (a wrong address, user, password or database fails here at once, where the
    /// client's pool would retry for about a minute before failing a query), then creates the table and its
    /// indexes when missing.
    public func prepare() async throws {
        do {
            let direct = try await PostgresConnection.connect(configuration: connection, id: 0, logger: logger)
            try await direct.close()
        } catch {
            throw describe("connect", error)
        }
        var ddl = ["""
            CREATE TABLE IF NOT EXISTS migration_tasks (
                id text PRIMARY KEY, project_id text NOT NULL, name text NOT NULL, request text NOT NULL,
                sealed_secrets text, target text NOT NULL, status text NOT NULL, phase text NOT NULL,
                created_at double precision NOT NULL, updated_at double precision NOT NULL,
                started_at double precision, finished_at double precision, progress text, checkpoint text,
                report text, failure text, stop_requested boolean NOT NULL DEFAULT false, owner text,
                lease_until double precision, attempts bigint NOT NULL DEFAULT 0)
            """]
        ddl += TaskSQL.indexes.map { "CREATE INDEX IF NOT EXISTS \($0.0) ON migration_tasks (\($0.1))" }
        try await transaction("prepare") { conn in
            try await self.lock(Self.prepareLock, conn)
            for sql in ddl { try await self.rows(conn, SQLStatement(sql)) }
        }
    }

    public func insert(_ task: TaskRecord) async throws {
        try await transaction("insert") { conn in try await self.rows(conn, TaskSQL.insert(task)) }
    }

    public func task(project: String, id: String) async throws -> TaskRecord? {
        try await transaction("task") { conn in try await self.records(conn, TaskSQL.task(project: project, id: id)).first }
    }

    public func list(project: String, name: String?, offset: Int, limit: Int) async throws -> (count: Int, tasks: [TaskRecord]) {
        try await transaction("list") { conn in
            let count = try await self.rows(conn, TaskSQL.listCount(project: project, name: name)).first
            let tasks = try await self.records(conn, TaskSQL.listPage(project: project, name: name, offset: offset, limit: limit))
            guard let count else { return (0, tasks) }
            return (try TaskRowReader(row: count, id: nil, columns: ["COUNT(*)"]).required(0, count.integer), tasks)
        }
    }

    public func delete(project: String, id: String) async throws -> TaskDeletion {
        try await transaction("delete") { conn in
            if try await !self.rows(conn, TaskSQL.deleteFinished(project: project, id: id)).isEmpty { return .deleted }
            return try await self.rows(conn, TaskSQL.task(project: project, id: id)).isEmpty ? .notFound : .running
        }
    }

    public func requestStop(project: String, id: String, now: Double) async throws -> TaskRecord? {
        try await transaction("requestStop") { conn in
            try await self.rows(conn, TaskSQL.terminateUnheld(project: project, id: id, now: now))
            try await self.rows(conn, TaskSQL.flagStop(project: project, id: id, now: now))
            return try await self.records(conn, TaskSQL.task(project: project, id: id)).first
        }
    }

    public func claim(owner: String, now: Double, lease: Double) async throws -> TaskRecord? {
        try await transaction("claim") { conn in
            try await self.lock(Self.claimLock, conn)
            return try await self.records(conn, TaskSQL.claim(owner: owner, now: now, lease: lease)).first
        }
    }

    public func takeBack(id: String, owner: String) async throws {
        try await transaction("takeBack") { conn in try await self.rows(conn, TaskSQL.takeBack(id: id, owner: owner)) }
    }

    public func renew(id: String, owner: String, now: Double, lease: Double, update: TaskUpdate) async throws -> Bool? {
        try await transaction("renew") { conn in
            try await self.lock(Self.claimLock, conn)
            let statement = TaskSQL.renew(id: id, owner: owner, now: now, lease: lease, update: update)
            guard let row = try await self.rows(conn, statement).first else { return nil }
            return try TaskRowReader(row: row, id: id, columns: ["stop_requested"]).required(0, row.bool)
        }
    }

    public func finish(id: String, owner: String, status: TaskStatus, report: String?, failure: String?, now: Double) async throws -> Bool {
        let statement = try TaskSQL.finish(id: id, owner: owner, status: status, report: report, failure: failure, now: now)
        return try await transaction("finish") { conn in try await !self.rows(conn, statement).isEmpty }
    }

    public func release(owner: String) async throws {
        try await transaction("release") { conn in try await self.rows(conn, TaskSQL.release(owner: owner)) }
    }

    public func countByStatus() async throws -> [TaskStatus: Int] {
        try await transaction("countByStatus") { conn in
            var counts: [TaskStatus: Int] = [:]
            for row in try await self.rows(conn, TaskSQL.countByStatus) {
                let reader = TaskRowReader(row: row, id: nil, columns: ["status", "COUNT(*)"])
                let status = try TaskSQL.status(reader.required(0, row.text), in: "a count")
                counts[status, default: 0] += try reader.required(1, row.integer)
            }
            return counts
        }
    }

    /// Stops the client (its connections close) and waits for it.
    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    // MARK: running statements

    /// Runs `body` in one transaction; a failure is an error naming the store and the operation.
    @discardableResult
    private func transaction<T: Sendable>(_ operation: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { conn in try await body(conn) }
        } catch let error as PostgresTransactionError {
            throw describe(operation, error.closureError ?? error.beginError ?? error.commitError ?? error)
        } catch {
            throw describe(operation, error)
        }
    }

    private func describe(_ operation: String, _ error: any Error) -> TaskStoreError {
        if let error = error as? TaskStoreError { return error }
        var detail = "\(error)"
        if let error = error as? PSQLError {
            detail = "\(error.code)"
            if let message = error.serverInfo?[.message] { detail += ": \(message)" }
            if let state = error.serverInfo?[.sqlState] { detail += " (SQLSTATE \(state))" }
            if let underlying = error.underlying { detail += ": \(underlying)" }
        }
        return TaskStoreError("PostgreSQL task store \(place): \(operation) failed: \(detail)")
    }

    private func lock(_ key: Int64, _ conn: PostgresConnection) async throws {
        try await rows(conn, SQLStatement("SELECT pg_advisory_xact_lock($1)", [.integer(Int(key))]))
    }

    @discardableResult
    private func rows(_ conn: PostgresConnection, _ s: SQLStatement) async throws -> [PostgresTaskRow] {
        var binds = PostgresBindings(capacity: s.binds.count)
        for value in s.binds {
            switch value {
            case .text(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .integer(let v): binds.append(v)
            case .bool(let v): binds.append(v)
            }
        }
        let result = try await conn.query(PostgresQuery(unsafeSQL: s.sql, binds: binds), logger: logger)
        var rows: [PostgresTaskRow] = []
        for try await row in result { rows.append(PostgresTaskRow(row: row.makeRandomAccess())) }
        return rows
    }

    private func records(_ conn: PostgresConnection, _ s: SQLStatement) async throws -> [TaskRecord] {
        try await rows(conn, s).map { try TaskRecord(reading: $0) }
    }
}

/// A PostgreSQL row, read by position (postgres-nio throws on a value of another type).
struct PostgresTaskRow: TaskRowColumns {
    let row: PostgresRandomAccessRow

    var count: Int { row.count }
    func text(_ index: Int) throws -> String? { try row[index].decode(String?.self) }
    func real(_ index: Int) throws -> Double? { try row[index].decode(Double?.self) }
    func integer(_ index: Int) throws -> Int? { try row[index].decode(Int?.self) }
    func bool(_ index: Int) throws -> Bool? { try row[index].decode(Bool?.self) }
}
