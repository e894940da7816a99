import NIOCore
import RDBKit

/// What a new connection sends before its work, and what the replies mean: `AUTH`, `CLIENT SETNAME`,
/// `PING`, `INFO server`, on a first connection `CONFIG GET databases`, `CONFIG GET zset-max-*` and `INFO keyspace`,
/// then `SELECT`.
///
/// A pure state machine: `write(into:)` puts the commands in a buffer (sent in one write), and each reply
/// goes to `receive(_:)`, which says whether to wait for more, carry on (`done`), try again later on a
/// new connection (`retry`: the server is loading, busy, …) or give up (`refused`).
public struct Handshake: Sendable {
    public enum Step: Sendable, Hashable {
        case auth, setName, ping, info, databases, zsetLimits, keyspace
        case select(Int)
    }

    public struct Configuration: Sendable {
        /// `host:port`, for messages.
        public var address: String
        public var username: String?
        public var password: Secret?
        /// `CLIENT SETNAME` (nil: not set; its reply is ignored).
        public var clientName: String?
        /// Check the login with `PING` (a refused one names what is missing).
        public var ping = true
        /// Read `INFO server`.
        public var readInfo = true
        /// Read `CONFIG GET databases`, `CONFIG GET zset-max-*` and `INFO keyspace` (what the target holds before
        /// anything is written, and which sorted sets it keeps compact).
        public var readDatabases = true
        /// `SELECT` this database last (nil: stay in 0).
        public var database: Int?

        public init(address: String, username: String? = nil, password: Secret? = nil) {
            self.address = address
            self.username = username
            self.password = password
        }

        /// Login and database of `endpoint`, no `PING`, no `INFO`.
        public init(login endpoint: RedisEndpoint) {
            self.init(address: endpoint.address, username: endpoint.username, password: endpoint.password)
            ping = false
            readInfo = false
            readDatabases = false
            database = endpoint.database
        }
    }

    public enum Action: Sendable {
        /// More replies are due.
        case wait
        /// Every reply arrived: the connection is ready.
        case done(ServerInfo)
        /// Not now (`LOADING`, `BUSY`, `TRYAGAIN`): try again on a new connection after a pause.
        case retry(RedisServerError)
        /// The server refused the login or a step: stop.
        case refused(ConnectionError)
    }

    public let configuration: Configuration
    /// The steps whose replies are due, oldest first.
    public private(set) var pending = CircularBuffer<Step>()
    /// What the server said about itself (after `.done`).
    public private(set) var server: ServerInfo?
    /// Things worth a line in a report (a server that restarted between two connections).
    public private(set) var warnings: [String] = []
    /// The server of the previous connection to this target, if any.
    let previous: ServerInfo?

    public init(_ configuration: Configuration, previous: ServerInfo? = nil) {
        self.configuration = configuration
        self.previous = previous
        server = previous
    }

    /// Whether every reply has arrived.
    public var isDone: Bool { pending.isEmpty }

    /// Writes the handshake's commands.
    public mutating func write(into b: inout ByteBuffer) {
        let c = configuration
        if c.password != nil { pending.append(.auth) }
        if c.clientName != nil { pending.append(.setName) }
        if c.ping { pending.append(.ping) }
        if c.readInfo { pending.append(.info) }
        if c.readDatabases {
            pending.append(.databases)
            pending.append(.zsetLimits)
            pending.append(.keyspace)
        }
        if let db = c.database { pending.append(.select(db)) }
        b.writeCommands { e in
            if let password = c.password {
                e.begin(maxArguments: 3)
                e.argument("AUTH")
                if let u = c.username { e.argument(Array(u.utf8)) }
                e.argument(Array(password.value.utf8))
                e.end()
            }
            if let name = c.clientName {
                e.begin(maxArguments: 3)
                e.argument("CLIENT")
                e.argument("SETNAME")
                e.argument(Array(name.utf8))
                e.end()
            }
            if c.ping { e.command("PING") }
            if c.readInfo { e.command("INFO", "server") }
            if c.readDatabases {
                e.command("CONFIG", "GET", "databases")
                e.command("CONFIG", "GET", "zset-max-*")
                e.command("INFO", "keyspace")
            }
            if let db = c.database {
                e.begin(maxArguments: 2)
                e.argument("SELECT")
                e.argument(db)
                e.end()
            }
        }
    }

    /// The name and value pairs of a `CONFIG GET` reply (none for an error).
    static func configPairs(_ reply: RESPReply) -> [(name: String, value: String)] {
        guard case .array(let items?) = reply else { return [] }
        return stride(from: 0, to: items.count - 1, by: 2).compactMap { i in
            guard let n = items[i].text, let v = items[i + 1].text else { return nil }
            return (n, v)
        }
    }

    /// The reply to the oldest pending step.
    public mutating func receive(_ reply: RESPReply) -> Action {
        guard let step = pending.popFirst() else {
            return .refused(ConnectionError(.protocolError, "unexpected reply from the target: \(reply)"))
        }
        let error = reply.serverError
        if let error, error.isTransient { return .retry(error) }
        let c = configuration
        switch step {
        case .auth:
            if let e = error {
                let text = c.password?.redact(e.message) ?? e.message
                return .refused(ConnectionError(.handshakeRefused, "authentication to \(c.address) failed: \(text)", serverError: e))
            }
        case .setName:
            break
        case .ping:
            if let e = error {
                if e.code == .noAuth {
                    return .refused(ConnectionError(.handshakeRefused, "the target requires a password (NOAUTH): give one in the URL, --password-env or --password-file", serverError: e))
                }
                return .refused(ConnectionError(.handshakeRefused, "the target answered PING with an error: \(e)", serverError: e))
            }
        case .info:
            if let t = reply.text {
                var info = ServerInfo(info: t)
                if let old = previous {
                    if !old.runID.isEmpty && !info.runID.isEmpty && old.runID != info.runID {
                        warnings.append("the target restarted during the import (run_id \(old.runID) -> \(info.runID)); keys it acknowledged before are assumed persisted")
                    }
                    info.databases = old.databases
                    info.keyspace = old.keyspace
                    info.compactSortedSets = old.compactSortedSets
                }
                server = info
            } else if server == nil {
                server = ServerInfo()
            }
        case .keyspace:
            if let t = reply.text { server?.keyspace = ServerInfo.keyspace(info: t) }
        case .databases:
            if let v = Self.configPairs(reply).first(where: { $0.name == "databases" })?.value, let n = Int(v) {
                server?.databases = n
            }
        case .zsetLimits:
            // (An error, CONFIG renamed or not allowed: unknown, and the writers assume the defaults.)
            server?.compactSortedSets = CompactSortedSetLimits(config: Self.configPairs(reply))
        case .select(let db):
            if let e = error {
                return .refused(ConnectionError(.handshakeRefused, "SELECT \(db) failed on the target: \(e)", serverError: e))
            }
        }
        return pending.isEmpty ? .done(server ?? ServerInfo()) : .wait
    }
}
