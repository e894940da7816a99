/// Where a bucket service is and how to talk to it.
public struct S3Configuration: Sendable {
    /// `http` or `https`.
    public var scheme: String
    /// The service's host (`obs.cn-north-4.myhuaweicloud.com`, `127.0.0.1`).
    public var host: String
    public var port: Int
    /// The region in the signing scope (OBS: the region id, e.g. `cn-north-4`).
    public var region: String
    /// `/bucket/key` on the service's host (moto, most self-hosted services) instead of `/key` on
    /// `bucket.host` (virtual-hosted: OBS's and S3's default).
    public var pathStyle: Bool
    public var credentials: S3Credentials
    /// Bytes asked for by each ranged GET; a reader holds at most `1 + readAhead` such ranges (the one being
    /// decoded and the ones fetched meanwhile).
    public var rangeBytes = 4 << 20
    /// Ranges fetched ahead of the one being decoded, at the same time (each request waits for the service's
    /// first byte: more of them in flight hide that latency).
    public var readAhead = 2
    /// The first range of an object is smaller, so that telling what it holds (the header) costs little.
    public var firstRangeBytes = 256 << 10
    /// Seconds a read keeps resuming after a dropped connection or a 5xx (counted from the last byte received).
    public var retryTimeout = 60.0
    /// Seconds one request may take, whole (a range of `rangeBytes`, or a HEAD).
    public var requestTimeout = 120.0
    /// Connect to this host instead of the one the URL names (like curl's `--resolve`); the `Host` header and
    /// the signature keep the real name. For tests of virtual-hosted addressing on loopback.
    public var connectHost: String?

    public init(endpoint: String, region: String? = nil, pathStyle: Bool = false, credentials: S3Credentials) throws {
        var rest = Substring(endpoint)
        if let r = rest.firstRange(of: "://") {
            scheme = rest[..<r.lowerBound].lowercased()
            rest = rest[r.upperBound...]
        } else {
            scheme = "https"
        }
        guard scheme == "http" || scheme == "https" else {
            throw Invalid(description: "the endpoint \(endpoint) is not an http:// or https:// URL")
        }
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else {
                throw Invalid(description: "the endpoint \(endpoint) has a path: give the service's address only (the bucket is in s3://bucket/key or the task)")
            }
            rest = rest[..<slash]
        }
        var hostPart = rest
        var portValue = scheme == "https" ? 443 : 80
        if hostPart.hasPrefix("["), let close = hostPart.firstIndex(of: "]") {
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw Invalid(description: "the endpoint \(endpoint) has a bad port") }
                portValue = p
            }
            hostPart = hostPart[...close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            guard let p = Int(hostPart[hostPart.index(after: colon)...]), (1...65535).contains(p) else {
                throw Invalid(description: "the endpoint \(endpoint) has a bad port")
            }
            portValue = p
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw Invalid(description: "the endpoint \(endpoint) has no host") }
        host = hostPart.lowercased()
        port = portValue
        self.region = region ?? S3Configuration.region(ofHost: host) ?? "us-east-1"
        self.pathStyle = pathStyle
        self.credentials = credentials
    }

    /// The region a well-known host name carries: `obs.<region>.myhuaweicloud.com`, `s3.<region>.amazonaws.com`,
    /// `s3-<region>.amazonaws.com`.
    public static func region(ofHost host: String) -> String? {
        let parts = host.split(separator: ".").map(String.init)
        if parts.count >= 4, parts[0] == "obs", parts[parts.count - 2] == "myhuaweicloud" { return parts[1] }
        if parts.count >= 4, parts[0] == "s3", parts[parts.count - 2] == "amazonaws" { return parts[1] }
        if parts.count >= 3, parts[0].hasPrefix("s3-"), parts[parts.count - 2] == "amazonaws" { return String(parts[0].dropFirst(3)) }
        return nil
    }

    /// `scheme://host[:port]`, for messages.
    public var endpoint: String {
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(h)\(port == defaultPort ? "" : ":\(port)")"
    }

    var defaultPort: Int { scheme == "https" ? 443 : 80 }

    /// The `Host` header for a bucket (with the port when it is not the scheme's default).
    func hostHeader(bucket: String) -> String {
        let h = pathStyle ? host : "\(bucket).\(host)"
        return port == defaultPort ? h : "\(h):\(port)"
    }

    /// The encoded request path for an object (or the bucket, when `key` is empty).
    func path(bucket: String, key: String) -> String {
        let k = SigV4Signer.encode(key, keepSlash: true)
        return pathStyle ? "/\(SigV4Signer.encode(bucket, keepSlash: false))/\(k)" : "/\(k)"
    }

    /// The URL a request goes to (its host is `connectHost` when set).
    func url(bucket: String, path: String, query: String) -> String {
        let name = connectHost ?? (pathStyle ? host : "\(bucket).\(host)")
        let h = name.contains(":") && !name.hasPrefix("[") ? "[\(name)]" : name
        return "\(scheme)://\(h):\(port)\(path)\(query.isEmpty ? "" : "?" + query)"
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }
}

/// An object's address: `s3://bucket/key`.
public struct S3Location: Sendable, Hashable, CustomStringConvertible {
    public var bucket: String
    public var key: String

    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    public var description: String { "s3://\(bucket)/\(key)" }

    /// Whether `path` is an `s3://` (or `obs://`) address.
    public static func isObjectPath(_ path: String) -> Bool {
        path.hasPrefix("s3://") || path.hasPrefix("obs://")
    }

    /// Parses `s3://bucket/key` (also `obs://bucket/key`).
    public static func parse(_ path: String) throws -> S3Location {
        guard let r = path.firstRange(of: "://"), isObjectPath(path) else {
            throw S3Configuration.Invalid(description: "\(path) is not an s3://bucket/key address")
        }
        let rest = path[r.upperBound...]
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
            throw S3Configuration.Invalid(description: "\(path): give s3://bucket/key (a bucket and an object key)")
        }
        return S3Location(bucket: String(rest[..<slash]), key: String(rest[rest.index(after: slash)...]))
    }
}
