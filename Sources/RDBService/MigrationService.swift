#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import NIOCore

/// The migration-task service (`rdbcat serve`): the HTTP API and the workers over one task store, shut
/// down gracefully on SIGTERM/SIGINT (running imports stop between keys and their tasks stay MIGRATING,
/// to be resumed).
public enum MigrationService {
    /// Runs until a shutdown signal. `onListening` gets the bound port (useful with port 0).
    public static func run(config: ServiceConfig, host: String, port: Int, logger: Logger,
                           onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let secrets = try SecretBox.fromEnvironment(config.secretKeyEnv ?? "RDBCAT_SECRET_KEY")
        let store = try await openTaskStore(config.store, logger: logger)
        let owner = "\(hostName())-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let metrics = ServiceMetrics()
        let factory = ExecutionFactory(config: config, secrets: secrets, stateDir: stateDir(config), logger: logger)
        let workers = TaskWorkers(store: store, factory: factory, workers: config.workerCount, lease: config.lease,
                                  owner: owner, metrics: metrics, logger: logger)
        let api = TaskAPI(store: store, config: config, secrets: secrets, metrics: metrics, workers: workers, logger: logger)
        let router = Router()
        router.add(middleware: MethodNotAllowed())
        router.add(middleware: InternalErrors(logger: logger))
        api.addRoutes(to: router)
        let app = Application(
            router: router,
            // A request whose bytes stop coming (its client gone without closing) is dropped after 30 s idle, so
            // that it cannot hold the server's shutdown (which waits for requests in progress) for ever.
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .hostname(host, port: port), serverName: "rdbcat"),
            services: [workers],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
        do {
            try await app.runService()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// Where online migrations keep their replication checkpoints.
    static func stateDir(_ config: ServiceConfig) -> String {
        if let d = config.stateDir { return d }
        var s = config.store
        if s.hasPrefix("sqlite:") { s.removeFirst("sqlite:".count) }
        if !s.contains("://"), let slash = s.lastIndex(of: "/") { return String(s[..<slash]) + "/rdbcat-state" }
        return (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/rdbcat-state"
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "host" }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
