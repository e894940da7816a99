import Foundation
import Logging
@testable import RDBService
import RDBTestSupport
import Testing

@Suite(.ownThreads) struct OpenTaskStoreTests {
    @Test func urlsNameTheirStores() throws {
        #expect(try TaskStoreLocation("sqlite:/var/lib/rdbcat/tasks.db") == .sqlite(path: "/var/lib/rdbcat/tasks.db"))
        #expect(try TaskStoreLocation("sqlite:data/tasks.db") == .sqlite(path: "data/tasks.db"))
        #expect(try TaskStoreLocation("sqlite:///abs/tasks") == .sqlite(path: "/abs/tasks"))
        #expect(try TaskStoreLocation("tasks.sqlite") == .sqlite(path: "tasks.sqlite"))
        #expect(try TaskStoreLocation("/srv/tasks.db") == .sqlite(path: "/srv/tasks.db"))
        #expect(try TaskStoreLocation("postgres://svc:p%40ss@db.local:6543/rdb?sslmode=disable")
            == .postgres(host: "db.local", port: 6543, user: "svc", password: "p@ss", database: "rdb"))
        #expect(try TaskStoreLocation("postgresql://svc@db.local/rdb")
            == .postgres(host: "db.local", port: 5432, user: "svc", password: nil, database: "rdb"))
        for bad in ["tasks.txt", "mysql://u:pw@h/db", "sqlite:", "postgres://u:pw@h:5432/", "postgres://u:pw@/db"] {
            #expect(throws: TaskStoreError.self) { try TaskStoreLocation(bad) }
        }
    }

    @Test func errorsNeverShowThePassword() throws {
        let cases = [
            "postgres://svc:Hunter2Secret@db.local:5432/rdb?sslmode=require",
            "postgres://svc:Hunter2Secret@db.local:5432/rdb?application_name=x",
            "postgresql://svc:Hunter2Secret@db.local:5432/",
            "postgres://svc:Hunter2Secret@/rdb",
            "postgres://svc:Hunter2Secret/with/slash@db.local/rdb",
            "mysql://svc:Hunter2Secret@db.local/rdb",
        ]
        for url in cases {
            let error = #expect(throws: TaskStoreError.self) { try TaskStoreLocation(url) }
            #expect(error?.description.contains("Hunter2Secret") == false, "\(url): \(String(describing: error))")
            #expect(error?.description.contains("***") == true, "\(url): \(String(describing: error))")
        }
        #expect(redactingPassword("postgres://u:pw@h:1/d") == "postgres://u:***@h:1/d")
        #expect(redactingPassword("postgres://u@h:1/d") == "postgres://u@h:1/d")
        #expect(redactingPassword("postgres://u:a@b@h/d") == "postgres://u:***@h/d")
        #expect(redactingPassword("postgres://u:a b/c?d@h/d") == "postgres://u:***@h/d")
    }

    @Test func aServerErrorNamesTheURLWithoutThePassword() async throws {
        let server = try PostgresServer.shared()
        let url = server.url(database: "no_such_database", password: "Hunter2Secret")
        let error = await #expect(throws: TaskStoreError.self) { try await openTaskStore(url, logger: Logger(label: "test")) }
        let text = try #require(error).description
        #expect(!text.contains("Hunter2Secret"))
        #expect(text.contains("postgres://rdbcat:***@127.0.0.1:\(server.port)/no_such_database"))
        #expect(text.contains("no_such_database"))
    }

    @Test func sqliteOpensWhereTheURLSays() async throws {
        let dir = NSTemporaryDirectory() + "rdbcat-open-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for url in ["sqlite:\(dir)/a.sqlite", "\(dir)/b.db"] {
            let store = try await openTaskStore(url, logger: Logger(label: "test"))
            try await store.insert(makeTask("x", createdAt: 1))
            try await store.close()
            let again = try await openTaskStore(url, logger: Logger(label: "test"))
            #expect(try await again.task(project: "p1", id: "x")?.id == "x")
            try await again.close()
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/a.sqlite"))
        await #expect(throws: TaskStoreError.self) { try await openTaskStore("sqlite:\(dir)/missing/dir/c.db", logger: Logger(label: "test")) }
    }
}
