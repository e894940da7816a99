#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import RDBImport
import RDBMigration
import RDBReplication
import RedisWire

/// The passwords of a task body, kept apart from it and sealed in the store.
struct TaskSecrets: Codable, Equatable {
    var sourcePassword: String?
    var targetPassword: String?

    enum CodingKeys: String, CodingKey { case sourcePassword = "source_password", targetPassword = "target_password" }

    var isEmpty: Bool { sourcePassword == nil && targetPassword == nil }

    /// Takes the passwords out of a request: what the store keeps as the request shows `******` instead.
    static func split(_ request: MigrationTaskRequest) -> (redacted: MigrationTaskRequest, secrets: TaskSecrets) {
        var r = request
        let s = TaskSecrets(sourcePassword: request.sourceInstance?.password, targetPassword: request.targetInstance.password)
        if r.sourceInstance?.password != nil { r.sourceInstance?.password = redactedMark }
        if r.targetInstance.password != nil { r.targetInstance.password = redactedMark }
        return (r, s)
    }

    /// Puts the passwords back into a redacted request.
    func restore(into request: inout MigrationTaskRequest) {
        if let p = sourcePassword { request.sourceInstance?.password = p }
        if let p = targetPassword { request.targetInstance.password = p }
    }

    static let redactedMark = "******"
}

/// Turns a claimed task into a run: the request back with its passwords, the target from the config, the
/// bucket's place, the resume point.
struct ExecutionFactory: Sendable {
    let config: ServiceConfig
    let secrets: SecretBox
    let stateDir: String
    let logger: Logger

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func request(of record: TaskRecord) throws -> MigrationTaskRequest {
        var request: MigrationTaskRequest
        do {
            request = try MigrationTaskRequest.decodeStructure(Array(record.request.utf8))
        } catch {
            throw Failure(description: "the stored task body cannot be read: \(error)")
        }
        if let sealed = record.sealedSecrets {
            let text: String
            do { text = try secrets.open(sealed) } catch {
                throw Failure(description: "the task's passwords cannot be unsealed (is the service's secret key the one it was created with?): \(error)")
            }
            guard let s = try? JSONDecoder().decode(TaskSecrets.self, from: Data(text.utf8)) else {
                throw Failure(description: "the task's sealed passwords are not readable")
            }
            s.restore(into: &request)
        }
        return request
    }

    func make(_ record: TaskRecord) throws -> any TaskExecution {
        let request = try request(of: record)
        var target = try config.endpoint(instance: request.targetInstance.id)
        if let p = request.targetInstance.password { target.password = Secret(p) }
        var options = ImportOptions()
        // Each file wholly acknowledged before the next starts: the checkpoint a resumed import starts from.
        options.settleEachFile = true
        if let m = config.importMode {
            guard let mode = ImportOptions.Mode(rawValue: m) else { throw Failure(description: "import_mode '\(m)' is not one of auto, commands, restore") }
            options.mode = mode
        }
        switch request.migrationType {
        case .backupfileImport:
            let task = try MigrationTask(request)
            // A resumed run writes with replace semantics: the keys an earlier run wrote are overwritten, not
            // added to (a list pushed twice, a key reported as existing).
            let resumed = record.attempts > 1
            if resumed { options.replace = true }
            guard let bucket = config.buckets[task.bucketName] else {
                throw Failure(description: "bucket '\(task.bucketName)' is not in the service's config")
            }
            let runner: MigrationRunner
            if let path = bucket.path {
                runner = try MigrationRunner(task: task, bucketPath: path, target: target, options: options)
            } else {
                let objects = try config.objectInputs(bucket: task.bucketName)!
                runner = MigrationRunner(task: task, objects: objects, target: target, options: options)
            }
            runner.id = record.id
            return ImportExecution(runner: runner, firstFile: resumed ? ImportExecution.filesDone(record.checkpoint) : 0)
        case .onlineMigration:
            var o = SyncOptions()
            o.importOptions = options
            o.importOptions.replace = true
            let path = stateDir.hasSuffix("/") ? stateDir + record.id + ".checkpoint" : stateDir + "/" + record.id + ".checkpoint"
            o.checkpointPath = path
            do {
                try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
            } catch {
                throw Failure(description: "cannot create the state folder \(stateDir): \(error)")
            }
            // The checkpoint the store has (written by whichever service ran it last) is the one continued from.
            if let c = record.checkpoint, !c.isEmpty {
                guard FileManager.default.createFile(atPath: path, contents: Data(c.utf8)) else {
                    throw Failure(description: "cannot write the checkpoint \(path)")
                }
            } else {
                try? FileManager.default.removeItem(atPath: path)
            }
            let runner = try OnlineMigrationRunner(request: request, target: target, options: o)
            runner.id = record.id
            let logger = logger
            let id = record.id
            runner.engine.onNotice = { logger.info("task \(id): \($0)") }
            return OnlineExecution(runner: runner, checkpointPath: path)
        }
    }
}
