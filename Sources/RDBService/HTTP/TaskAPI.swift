#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import Logging
import RDBMigration
import RDBSinks

/// The task API (the cloud's create-migration-task contract, MIGRATION-TASK.md), JSON in and out:
///
/// - `POST /v2/{project_id}/migration-task`: 200 `{"id","name","status":"MIGRATING"}`, 400 naming the field;
/// - `GET /v2/{project_id}/migration-task/{task_id}`: the task, passwords redacted, with its progress and
///   report; `DELETE` of a task that is no longer MIGRATING; `POST …/{task_id}/stop`;
/// - `GET /v2/{project_id}/migration-tasks?offset&limit&name`: a page of a project's tasks;
/// - `GET /openapi.json`, `GET /metrics`, `GET /health`.
struct TaskAPI: Sendable {
    let store: any TaskStore
    let config: ServiceConfig
    let secrets: SecretBox
    let metrics: ServiceMetrics
    let workers: TaskWorkers
    let logger: Logger

    static let maxBody = 1 << 20
    /// How long a request waits for the task store: then 500 (`InternalErrors`), not the pool's minute of retries.
    static let storeLimit = Duration.seconds(10)

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v2/:project_id/migration-task") { request, context in
            try await self.create(request, project: try context.parameters.require("project_id"))
        }
        router.get("/v2/:project_id/migration-task/:task_id") { _, context in
            try await self.show(project: try context.parameters.require("project_id"), id: try context.parameters.require("task_id"))
        }
        router.delete("/v2/:project_id/migration-task/:task_id") { _, context in
            try await self.delete(project: try context.parameters.require("project_id"), id: try context.parameters.require("task_id"))
        }
        router.post("/v2/:project_id/migration-task/:task_id/stop") { _, context in
            try await self.stop(project: try context.parameters.require("project_id"), id: try context.parameters.require("task_id"))
        }
        router.get("/v2/:project_id/migration-tasks") { request, context in
            try await self.list(request, project: try context.parameters.require("project_id"))
        }
        router.get("/openapi.json") { _, _ in
            Self.json(.ok, OpenAPIDocument.text(instances: config.instances.keys.sorted(), buckets: config.buckets.keys.sorted()))
        }
        router.get("/metrics") { _, _ in
            let counts = try await StoreCall.within(Self.storeLimit) { try await store.countByStatus() }
            let text = metrics.render(counts: counts, running: workers.runningCount)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/health") { _, _ in Self.json(.ok, "{\"status\":\"ok\"}") }
    }

    // MARK: operations

    /// A project id is 1 to 64 letters, digits, `-` or `_`.
    static func checkProject(_ p: String) -> Response? {
        let ok = (1...64).contains(p.utf8.count) && p.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F
        }
        return ok ? nil : error(MigrationTaskError(field: "project_id", message: "must be 1 to 64 letters, digits, '-' or '_'"))
    }

    func create(_ request: Request, project: String) async throws -> Response {
        if let bad = Self.checkProject(project) { return bad }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBody)
        } catch {
            return Self.error(MigrationTaskError(field: "", message: "the task body is larger than \(Self.maxBody) bytes"))
        }
        let task: MigrationTaskRequest
        do {
            task = try MigrationTaskRequest.decode(Array(buffer: body))
            // What the body names must exist here: the target instance, and the bucket of an import.
            if config.instances[task.targetInstance.id] == nil {
                throw MigrationTaskError(field: "target_instance.id", message: "no instance '\(task.targetInstance.id)' is known to this service")
            }
            if let b = task.backupFiles, config.buckets[b.bucketName] == nil {
                throw MigrationTaskError(field: "backup_files.bucket_name", message: "no bucket '\(b.bucketName)' is known to this service")
            }
        } catch let e as MigrationTaskError {
            return Self.error(e)
        }
        let (redacted, passwords) = TaskSecrets.split(task)
        let sealed: String? = passwords.isEmpty ? nil : try secrets.seal(Self.encode(passwords))
        let t = now()
        let record = TaskRecord(
            id: MigrationTaskResponse.newID(), projectID: project, name: task.taskName, request: Self.encode(redacted),
            sealedSecrets: sealed, target: task.targetInstance.id, createdAt: t)
        try await StoreCall.within(Self.storeLimit) { try await store.insert(record) }
        workers.wake()
        logger.info("task \(record.id) (\(record.name)) created in project \(project): \(task.migrationType.rawValue), \(task.migrationMethod.rawValue), target \(task.targetInstance.id)")
        return Self.json(.ok, MigrationTaskResponse(id: record.id, name: record.name, status: .migrating).json)
    }

    func show(project: String, id: String) async throws -> Response {
        if let bad = Self.checkProject(project) { return bad }
        guard let r = try await StoreCall.within(Self.storeLimit, { try await store.task(project: project, id: id) }) else { return Self.notFound(id) }
        return Self.json(.ok, Self.taskJSON(r))
    }

    func delete(project: String, id: String) async throws -> Response {
        if let bad = Self.checkProject(project) { return bad }
        switch try await StoreCall.within(Self.storeLimit, { try await store.delete(project: project, id: id) }) {
        case .deleted: return Response(status: .noContent)
        case .notFound: return Self.notFound(id)
        case .running:
            return Self.error(MigrationTaskError(field: "task_id", message: "task \(id) is still MIGRATING: stop it first (POST …/migration-task/\(id)/stop)", status: 409))
        }
    }

    func stop(project: String, id: String) async throws -> Response {
        if let bad = Self.checkProject(project) { return bad }
        let at = now()
        guard let r = try await StoreCall.within(Self.storeLimit, { try await store.requestStop(project: project, id: id, now: at) }) else {
            return Self.notFound(id)
        }
        if r.status == .migrating && r.owner == workers.owner { workers.stop(task: id) }
        logger.info("task \(id): stop requested (\(r.status.rawValue))")
        return Self.json(.ok, MigrationTaskResponse(id: r.id, name: r.name, status: r.status).json)
    }

    func list(_ request: Request, project: String) async throws -> Response {
        if let bad = Self.checkProject(project) { return bad }
        let q = request.uri.queryParameters
        var offset = 0
        var limit = 10
        if let s = q.get("offset") {
            guard s.utf8.count <= 10, let n = Int(s), (0...1_000_000_000).contains(n), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return Self.error(MigrationTaskError(field: "offset", message: "must be a whole number from 0 to 1000000000, not '\(s)'"))
            }
            offset = n
        }
        if let s = q.get("limit") {
            guard let n = Int(s), (1...1000).contains(n), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return Self.error(MigrationTaskError(field: "limit", message: "must be a whole number from 1 to 1000, not '\(s)'"))
            }
            limit = n
        }
        let name = q.get("name")
        let (count, tasks) = try await StoreCall.within(Self.storeLimit) { [offset, limit] in
            try await store.list(project: project, name: name, offset: offset, limit: limit)
        }
        var j = JSONBuilder()
        j.beginObject()
        j.field("count", count)
        j.key("migration_tasks")
        j.beginArray()
        for t in tasks { Self.summary(t, &j) }
        j.endArray()
        j.endObject()
        return Self.json(.ok, j.text)
    }

    // MARK: bodies

    /// A task as `GET` shows it: the request as given (passwords as `******`), status and phase, times,
    /// progress, and the report or the reason once it ended.
    static func taskJSON(_ r: TaskRecord) -> String {
        var j = JSONBuilder()
        j.beginObject()
        j.field("id", r.id)
        j.field("name", r.name)
        j.field("project_id", r.projectID)
        j.field("status", r.status.rawValue)
        j.field("phase", r.phase)
        j.key("request")
        j.raw(r.request)
        j.field("created_at", timestamp(r.createdAt))
        j.field("updated_at", timestamp(r.updatedAt))
        j.field("started_at", r.startedAt.map(timestamp))
        j.field("finished_at", r.finishedAt.map(timestamp))
        j.field("attempts", r.attempts)
        j.field("stop_requested", r.stopRequested)
        j.key("progress")
        if let p = r.progress { j.raw(p) } else { j.null() }
        j.key("report")
        if let p = r.report { j.raw(p) } else { j.null() }
        j.field("failure", r.failure)
        j.endObject()
        return j.text
    }

    /// A line of the task list (the cloud API's list fields).
    static func summary(_ r: TaskRecord, _ j: inout JSONBuilder) {
        let request = try? MigrationTaskRequest.decodeStructure(Array(r.request.utf8))
        j.beginObject()
        j.field("task_id", r.id)
        j.field("task_name", r.name)
        j.field("status", r.status.rawValue)
        j.field("phase", r.phase)
        j.field("migration_type", request?.migrationType.rawValue)
        j.field("migration_method", request?.migrationMethod.rawValue)
        j.field("data_source", request.map { $0.sourceInstance?.addrs ?? $0.backupFiles?.bucketName ?? "" })
        j.field("target_instance_id", r.target)
        j.field("target_instance_name", request?.targetInstance.name)
        j.field("created_at", timestamp(r.createdAt))
        j.endObject()
    }

    static func timestamp(_ t: Double) -> String { APITimestamp.string(Date(timeIntervalSince1970: t)) }

    static func encode<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ e: MigrationTaskError) -> Response {
        json(HTTPResponse.Status(code: e.status), e.json)
    }

    static func notFound(_ id: String) -> Response {
        error(MigrationTaskError(field: "task_id", message: "no task '\(id)' in this project", status: 404))
    }
}
