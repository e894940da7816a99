import Foundation
import Logging

/// Opens the task store a URL names, and prepares it (creates or upgrades the table):
///
/// - `sqlite:/abs/path.db`, `sqlite:relative/path.db` (`sqlite:///abs/path` too), or a bare path ending
///   `.sqlite`, `.sqlite3` or `.db`: a `SQLiteTaskStore`;
/// - `postgres://user:password@host:port/database` (or `postgresql://`; port 5432 when left out; the only
///   `sslmode` is `disable`, the default): a `PostgresTaskStore`.
///
/// Errors name the URL with its password replaced by `***`; the password is never logged.
public func openTaskStore(_ url: String, logger: Logger) async throws -> any TaskStore {
    let store: any TaskStore
    switch try TaskStoreLocation(url) {
    case .sqlite(let path):
        do {
            store = try SQLiteTaskStore(path: path)
        } catch {
            throw TaskStoreError("task store \(url): \(error)")
        }
    case .postgres(let host, let port, let user, let password, let database):
        store = PostgresTaskStore(host: host, port: port, username: user, password: password, database: database, logger: logger)
    }
    do {
        try await store.prepare()
    } catch {
        try? await store.close()
        throw TaskStoreError("task store \(redactingPassword(url)): \(error)")
    }
    logger.info("task store open", metadata: ["store": "\(redactingPassword(url))"])
    return store
}

/// Where a task store URL points.
enum TaskStoreLocation: Equatable {
    case sqlite(path: String)
    case postgres(host: String, port: Int, user: String, password: String?, database: String)

    init(_ url: String) throws {
        let lower = url.lowercased()
        if lower.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { throw TaskStoreError("task store \(url): no file path after sqlite:") }
            self = .sqlite(path: path)
        } else if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            self = try Self.postgres(url)
        } else if !lower.contains("://"), [".sqlite", ".sqlite3", ".db"].contains(where: { lower.hasSuffix($0) }) {
            self = .sqlite(path: url)
        } else {
            throw TaskStoreError("""
                task store \(redactingPassword(url)): not a store URL: expected sqlite:PATH, a path ending .sqlite or .db, \
                or postgres://user:password@host:port/database
                """)
        }
    }

    private static func postgres(_ url: String) throws -> TaskStoreLocation {
        let shown = redactingPassword(url)
        guard let parts = URLComponents(string: url) else {
            throw TaskStoreError("task store \(shown): not a valid URL (percent-encode special characters in the password)")
        }
        guard let host = parts.host, !host.isEmpty else { throw TaskStoreError("task store \(shown): no host") }
        guard let user = parts.user, !user.isEmpty else { throw TaskStoreError("task store \(shown): no user name") }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw TaskStoreError("task store \(shown): the path must name one database (postgres://user@host:port/database)")
        }
        for item in parts.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"): continue
            case ("sslmode", let mode):
                throw TaskStoreError("task store \(shown): sslmode=\(mode ?? "") is not supported (connections are not encrypted): use sslmode=disable")
            default:
                throw TaskStoreError("task store \(shown): unknown parameter \(item.name) (only sslmode=disable is understood)")
            }
        }
        return .postgres(host: host, port: parts.port ?? 5432, user: user, password: parts.password, database: database)
    }
}

/// `url` with the password of its `scheme://user:password@host` part replaced by `***` (as it is when it
/// has none). The user part ends at the last `@`, so a password holding an unencoded `@`, `/` or `?` is hidden
/// whole (an `@` further on hides more than the password, never less).
func redactingPassword(_ url: String) -> String {
    guard let scheme = url.range(of: "://") else { return url }
    let rest = url[scheme.upperBound...]
    guard let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return url }
    return String(url[...colon]) + "***" + String(url[at...])
}
