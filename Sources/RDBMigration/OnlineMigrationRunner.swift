import RDBImport
import RDBSinks
import RDBReplication
import RedisWire

/// Runs an `online_migration` task with the sync engine: `full_amount_migration` copies the source's
/// snapshot once, `incremental_migration` copies it and then applies the source's writes until `stop()`
/// (the cut-over). Status: MIGRATING while it runs; SUCCESS after a full copy or a clean stop of an
/// incremental one; FAILED with the reason otherwise.
public final class OnlineMigrationRunner: @unchecked Sendable {
    public let request: MigrationTaskRequest
    public let source: RedisEndpoint
    public let target: RedisEndpoint
    public let engine: SyncEngine
    /// The task id (32 hex digits, like the API's; a new one unless the caller has one).
    public var id: String
    /// Receives each state line (`{"id","name","status"}`) as it happens.
    public var onState: ((String) -> Void)?

    /// Validates the task (throws `MigrationTaskError` naming the field). The source's password is the
    /// task's; the target's is the task's unless `target` has one.
    public init(request: MigrationTaskRequest, target: RedisEndpoint, options: SyncOptions) throws(MigrationTaskError) {
        guard request.migrationType == .onlineMigration else {
            throw MigrationTaskError(field: "migration_type", message: "an OnlineMigrationRunner runs online_migration tasks")
        }
        try request.validate()
        let addrs = request.sourceInstance!.addrs  // validate() requires it
        let colon = addrs.lastIndex(of: ":")!
        var host = String(addrs[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        source = RedisEndpoint(host: host, port: Int(addrs[addrs.index(after: colon)...])!,
                               password: request.sourceInstance!.password.map(Secret.init))
        var t = target
        if t.password == nil { t.password = request.targetInstance.password.map(Secret.init) }
        self.target = t
        self.request = request
        var o = options
        o.replica.fullOnly = request.migrationMethod == .fullAmountMigration
        engine = SyncEngine(source: source, target: t, options: o)
        id = MigrationTaskResponse.newID()
    }

    public func stateLine(_ status: TaskStatus) -> String {
        MigrationTaskResponse(id: id, name: request.taskName, status: status).json
    }

    /// Stops an incremental migration (the cut-over): what was received is applied, then `run` returns.
    public func stop() { engine.stop() }

    /// Runs the task; returns the sync's report and the task's JSON report.
    public func run() -> (report: SyncReport, json: String) {
        let startedAt = APITimestamp.string()
        onState?(stateLine(.migrating))
        let report = engine.run()
        let status: TaskStatus = report.status == .failed ? .failed : .success
        onState?(stateLine(status))
        var json = report.json()
        // The task's fields in front of the sync's report.
        var j = JSONBuilder()
        j.beginObject()
        j.field("task_status", status.rawValue)
        request.writeIdentity(&j, id: id, targetAddress: target.address)
        j.key("source_instance")
        j.beginObject()
        j.field("addrs", source.address)
        j.endObject()
        j.field("started_at", startedAt)
        j.field("finished_at", APITimestamp.string())
        j.endObject()
        var head = j.text
        head.removeLast()  // "}"
        json.removeFirst()  // "{"
        json = head + "," + json
        return (report, json)
    }
}
