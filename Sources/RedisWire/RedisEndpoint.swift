#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A password or other secret. It never shows in descriptions, reflection, logs or reports.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself: hand it only to the server.
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "***" }
    public var debugDescription: String { "***" }
    public var customMirror: Mirror { Mirror(self, children: []) }

    /// Replaces every occurrence of the secret in `text` (for messages that may quote input).
    public func redact(_ text: String) -> String {
        guard !value.isEmpty, text.contains(value) else { return text }
        return text.replacing(value, with: "***")
    }
}

/// TLS settings of a connection.
public struct TLSOptions: Sendable, Equatable {
    /// PEM file of the CA(s) to trust; nil = the system's roots.
    public var caFile: String?
    /// Client certificate chain and key (PEM), for servers with `tls-auth-clients yes`.
    public var certificateFile: String?
    public var keyFile: String?
    /// Check the server's certificate (chain and host name).
    public var verify = true
    /// Name sent in SNI and checked against the certificate (default: the host, unless it is an IP address).
    public var serverName: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verify: Bool = true, serverName: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.verify = verify
        self.serverName = serverName
    }
}

/// Where a server is and how to log in. Its description never includes the password.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// ACL user (with `password`); nil = the default user (`AUTH password`).
    public var username: String?
    public var password: Secret?
    /// The database in the URL path (`redis://host:port/3`), if any.
    public var database: Int?
    public var tls: TLSOptions?

    public init(host: String, port: Int = 6379, username: String? = nil, password: Secret? = nil, database: Int? = nil, tls: TLSOptions? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]`, `rediss://...` (TLS), or `host[:port]`.
    /// `[::1]:6379` for IPv6. Percent-escapes in user and password are decoded. Errors never quote the
    /// password.
    public static func parse(_ text: String) throws -> RedisEndpoint {
        var rest = Substring(text)
        var tls = false
        if let r = rest.firstRange(of: "://") {
            let scheme = rest[..<r.lowerBound].lowercased()
            switch scheme {
            case "redis", "valkey": tls = false
            case "rediss", "valkeys": tls = true
            default: throw ParseError(description: "unsupported URL scheme '\(scheme)' (use redis:// or rediss://)")
            }
            rest = rest[r.upperBound...]
        }
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let u = try percentDecode(userinfo[..<colon], what: "user name")
                username = u.isEmpty ? nil : u
                password = Secret(try percentDecode(userinfo[userinfo.index(after: colon)...], what: "password"))
            } else if !userinfo.isEmpty {
                // `redis://secret@host` (no colon) is the password alone, as redis-cli reads it.
                password = Secret(try percentDecode(userinfo, what: "password"))
            }
        }
        var database: Int?
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let d = Int(path), d >= 0 else { throw ParseError(description: "database '\(path)' in the URL is not a number") }
                database = d
            }
        }
        var host: String
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(description: "unterminated IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw ParseError(description: "bad port '\(after.dropFirst())'") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let p = rest[rest.index(after: colon)...]
            guard let v = Int(p) else { throw ParseError(description: "bad port '\(p)'") }
            port = v
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw ParseError(description: "no host given") }
        guard (1...65535).contains(port) else { throw ParseError(description: "port \(port) is out of range") }
        return RedisEndpoint(host: host, port: port, username: username, password: password, database: database,
                             tls: tls ? TLSOptions() : nil)
    }

    static func percentDecode(_ s: Substring, what: String) throws -> String {
        guard s.contains("%") else { return String(s) }
        var out: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let c = u.popFirst() {
            if c == UInt8(ascii: "%") {
                guard u.count >= 2, let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16) else {
                    throw ParseError(description: "bad percent-escape in the \(what)")
                }
                out.append(v)
                u = u.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `host` is an IPv4 or IPv6 literal (no SNI for those).
    public var hostIsIPAddress: Bool {
        var a4 = in_addr()
        var a6 = in6_addr()
        return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1
    }

    /// `redis://user:***@host:port/db`.
    public var description: String {
        var s = tls == nil ? "redis://" : "rediss://"
        if let username { s += username + (password == nil ? "@" : ":***@") } else if password != nil { s += ":***@" }
        s += host.contains(":") ? "[\(host)]" : host
        s += ":\(port)"
        if let database { s += "/\(database)" }
        return s
    }

    /// `host:port`, for reports.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Reads a password from an environment variable or a file (first line, without its line ending).
public enum SecretSource {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func environment(_ name: String) throws -> Secret {
        guard let v = getenv(name) else { throw Failure(description: "environment variable \(name) is not set") }
        return Secret(String(cString: v))
    }

    public static func file(_ path: String) throws -> Secret {
        guard let f = fopen(path, "r") else {
            throw Failure(description: "cannot read the password file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
            if bytes.count > 1 << 16 { break }
        }
        if let nl = bytes.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) { bytes = Array(bytes[..<nl]) }
        return Secret(String(decoding: bytes, as: UTF8.self))
    }
}
