#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An access key pair (and a session token for temporary credentials). Its description never shows the secret
/// or the token.
public struct S3Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "access key \(accessKeyID) (secret not shown\(sessionToken == nil ? "" : ", with a session token"))"
    }

    public var debugDescription: String { description }

    /// Reflection (`dump`, `Mirror`) shows the access key only.
    public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID]) }

    /// Replaces the secret and the token wherever they occur in `text` (for messages that quote a server's
    /// answer or a request).
    public func redact(_ text: String) -> String {
        var out = text
        for s in [secretAccessKey, sessionToken ?? ""] where s.count >= 4 {
            out = out.replacing(s, with: "<redacted>")
        }
        return out
    }

    /// Why no credentials could be had.
    public struct Missing: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Credentials from the environment the S3 tools use: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// the optional `AWS_SESSION_TOKEN`, else `OBS_ACCESS_KEY_ID` and `OBS_SECRET_ACCESS_KEY` (and
    /// `OBS_SECURITY_TOKEN`); nil when neither pair is set.
    public static func fromEnvironment(_ env: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> S3Credentials? {
        func value(_ name: String) -> String? { env(name).flatMap { $0.isEmpty ? nil : $0 } }
        if let ak = value("AWS_ACCESS_KEY_ID"), let sk = value("AWS_SECRET_ACCESS_KEY") {
            return S3Credentials(accessKeyID: ak, secretAccessKey: sk, sessionToken: value("AWS_SESSION_TOKEN"))
        }
        if let ak = value("OBS_ACCESS_KEY_ID"), let sk = value("OBS_SECRET_ACCESS_KEY") {
            return S3Credentials(accessKeyID: ak, secretAccessKey: sk, sessionToken: value("OBS_SECURITY_TOKEN"))
        }
        return nil
    }

    /// Reads a credentials file. Accepted forms (the first key pair found is used):
    /// - the AWS shared credentials file: `aws_access_key_id = …`, `aws_secret_access_key = …`,
    ///   `aws_session_token = …` (the `[default]` section if there is one, else the first);
    /// - `KEY=VALUE` lines with the environment names (`AWS_ACCESS_KEY_ID=…`, `OBS_SECRET_ACCESS_KEY=…`);
    /// - the `credentials.csv` Huawei Cloud's console hands out (`User Name,Access Key Id,Secret Access Key`
    ///   and a line of values).
    public static func fromFile(_ path: String) throws -> S3Credentials {
        guard let text = readSmallFile(path, limit: 1 << 16) else {
            throw Missing(description: "cannot read the credentials file \(path): \(String(cString: strerror(errno)))")
        }
        if let c = parse(text) { return c }
        throw Missing(description: "the credentials file \(path) holds no access key pair (aws_access_key_id/aws_secret_access_key, AWS_ACCESS_KEY_ID=/AWS_SECRET_ACCESS_KEY=, or a credentials.csv)")
    }

    /// Parses the text of a credentials file (see `fromFile`).
    public static func parse(_ text: String) -> S3Credentials? {
        let lines = text.split(whereSeparator: \.isNewline).map { String($0.trimmingSpaces()) }
        // credentials.csv: a header naming the columns, then the values.
        if let header = lines.first, header.lowercased().contains("access key id") {
            let names = header.split(separator: ",").map { $0.trimmingSpaces().lowercased() }
            if lines.count > 1, let ak = names.firstIndex(of: "access key id"), let sk = names.firstIndex(of: "secret access key") {
                let values = lines[1].split(separator: ",", omittingEmptySubsequences: false).map { String($0.trimmingSpaces()) }
                if ak < values.count, sk < values.count, !values[ak].isEmpty, !values[sk].isEmpty {
                    return S3Credentials(accessKeyID: values[ak], secretAccessKey: values[sk])
                }
            }
            return nil
        }
        // INI sections or plain KEY=VALUE lines.
        var sections: [(name: String, values: [String: String])] = [("", [:])]
        for line in lines where !line.isEmpty && !line.hasPrefix("#") && !line.hasPrefix(";") {
            if line.hasPrefix("[") && line.hasSuffix("]") {
                sections.append((String(String(line.dropFirst().dropLast()).trimmingSpaces()), [:]))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            var key = String(line[..<eq]).trimmingSpaces().lowercased()
            if key.hasPrefix("export ") { key = String(String(key.dropFirst(7)).trimmingSpaces()) }
            var value = String(String(line[line.index(after: eq)...]).trimmingSpaces())
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f { value = String(value.dropFirst().dropLast()) }
            sections[sections.count - 1].values[key] = value
        }
        let ordered = sections.filter { $0.name == "default" } + sections.filter { $0.name != "default" }
        for (_, v) in ordered {
            for (ak, sk, token) in [("aws_access_key_id", "aws_secret_access_key", "aws_session_token"),
                                    ("obs_access_key_id", "obs_secret_access_key", "obs_security_token"),
                                    ("access_key_id", "secret_access_key", "security_token")] {
                if let a = v[ak], let s = v[sk], !a.isEmpty, !s.isEmpty {
                    return S3Credentials(accessKeyID: a, secretAccessKey: s, sessionToken: v[token].flatMap { $0.isEmpty ? nil : $0 })
                }
            }
        }
        return nil
    }
}

/// Reads a file of at most `limit` bytes as UTF-8; nil when it cannot be read (errno says why).
public func readSmallFile(_ path: String, limit: Int) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count <= limit {
        let n = read(fd, &buf, buf.count)
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return String(decoding: out.prefix(limit), as: UTF8.self)
}
