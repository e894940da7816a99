/// An error reply from a server (`-CODE message`), typed by its code.
///
/// The code is the reply's first word. The codes this package reacts to have names (`.moved`, `.loading`,
/// …); any other code is kept as it came (`RedisServerError.Code("ERR")`), so nothing is lost.
/// `MOVED` and `ASK` replies carry a `Redirect`.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first word of an error reply. Its `rawValue` is the word as the server sent it.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A generic error (wrong type, syntax, …).
        public static let err = Code("ERR")
        /// The key's slot is served by another node (cluster): `MOVED slot host:port`.
        public static let moved = Code("MOVED")
        /// The key's slot is migrating; ask the other node once: `ASK slot host:port`.
        public static let ask = Code("ASK")
        /// A multi-key command while the slot is being migrated (cluster).
        public static let tryAgain = Code("TRYAGAIN")
        /// The keys of a command hash to different slots (cluster).
        public static let crossSlot = Code("CROSSSLOT")
        /// The cluster is down.
        public static let clusterDown = Code("CLUSTERDOWN")
        /// The server is loading its data set after a restart.
        public static let loading = Code("LOADING")
        /// A script or function is running.
        public static let busy = Code("BUSY")
        /// `RESTORE` without `REPLACE` onto a key that exists.
        public static let busyKey = Code("BUSYKEY")
        /// A password is needed (`AUTH`).
        public static let noAuth = Code("NOAUTH")
        /// `AUTH` with a wrong user or password.
        public static let wrongPass = Code("WRONGPASS")
        /// The server is a read-only replica.
        public static let readOnly = Code("READONLY")
        /// The server is over `maxmemory`.
        public static let outOfMemory = Code("OOM")
        /// The ACL user may not run the command or touch the key.
        public static let noPermission = Code("NOPERM")
        /// The replica's link to its primary is down (`replica-serve-stale-data no`).
        public static let masterDown = Code("MASTERDOWN")
        /// The server cannot persist (`stop-writes-on-bgsave-error`).
        public static let misconfigured = Code("MISCONF")
        /// Not enough good replicas (`min-replicas-to-write`).
        public static let noReplicas = Code("NOREPLICAS")
    }

    /// Where a `MOVED` or `ASK` reply sends a slot.
    public struct Redirect: Sendable, Hashable, CustomStringConvertible {
        /// `MOVED` (the slot lives there now) or `ASK` (send that one command there, after `ASKING`).
        public var isAsk: Bool
        public var slot: Int
        /// Empty: the host of the connection the reply came on (a server that does not know its own name).
        public var host: String
        public var port: Int

        public init(isAsk: Bool, slot: Int, host: String, port: Int) {
            self.isAsk = isAsk
            self.slot = slot
            self.host = host
            self.port = port
        }

        /// The host to go to, given the host of the connection the reply came on.
        public func host(defaultingTo connectionHost: String) -> String { host.isEmpty ? connectionHost : host }

        /// Parses `slot host:port` (or `slot :port`; IPv6 hosts end at the last colon).
        init?(isAsk: Bool, arguments: Substring) {
            let words = arguments.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 2, let slot = Int(words[0]), (0..<16384).contains(slot),
                let colon = words[1].lastIndex(of: ":"), let port = Int(words[1][words[1].index(after: colon)...]),
                (1...65535).contains(port)
            else { return nil }
            var host = words[1][..<colon]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            self.init(isAsk: isAsk, slot: slot, host: String(host), port: port)
        }

        public var description: String {
            "\(isAsk ? "ASK" : "MOVED") \(slot) \(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }

    public let code: Code
    /// The whole reply line as the server sent it, code included (what reports quote).
    public let message: String
    /// For `MOVED` and `ASK`: where to go.
    public let redirect: Redirect?

    /// Types the text of an error reply (without its `-`).
    public init(_ message: String) {
        self.message = message
        let word = message.utf8.firstIndex(of: UInt8(ascii: " ")).map { String(message[..<$0]) } ?? message
        code = Code(word)
        switch code {
        case .moved, .ask:
            let rest = message.dropFirst(word.count)
            redirect = Redirect(isAsk: code == .ask, arguments: rest)
        default:
            redirect = nil
        }
    }

    public var description: String { message }

    /// "Not now": the same command may succeed after a pause (on a new connection). `CLUSTERDOWN` is the
    /// state of a cluster while a failed master's replica takes over.
    public var isTransient: Bool { code == .loading || code == .busy || code == .tryAgain || code == .clusterDown }

    /// Writing more is pointless: every later write would be refused the same way.
    public var stopsWrites: Bool {
        switch code {
        case .outOfMemory, .readOnly, .noAuth, .wrongPass, .noPermission, .misconfigured, .masterDown, .moved, .ask,
            .crossSlot, .noReplicas:
            true
        default:
            false
        }
    }

    /// The reply comes from a Redis Cluster node (a redirect or a cluster-only refusal).
    public var isCluster: Bool {
        code == .moved || code == .ask || code == .clusterDown || code == .crossSlot
    }

    /// The login was refused (missing or wrong credentials).
    public var isAuthentication: Bool { code == .noAuth || code == .wrongPass }
}
