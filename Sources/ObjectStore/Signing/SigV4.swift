#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto

/// AWS Signature Version 4 for S3 requests, header-based, with `UNSIGNED-PAYLOAD` (the single-chunk mode Huawei
/// OBS's V4 accepts; S3 and moto accept it too).
///
/// The canonical request is `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED\nPAYLOAD`; the string to sign is
/// `AWS4-HMAC-SHA256\n<amzdate>\n<scope>\n<hex sha256(canonical request)>`; the key is
/// `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), "s3"), "aws4_request")`.
/// (AWS S3 API reference, "sig-v4-header-based-auth"; `../shared/spec/WAVE2-PROTOCOLS.md` §3.3.)
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    /// The payload hash sent in `x-amz-content-sha256` and signed: the body is not hashed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The SHA-256 of an empty body (what the AWS documentation's examples sign).
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign: the path and query as they go on the wire (each already encoded with
    /// `SigV4Signer.encode`), and the headers to sign (any case; `host` among them).
    public struct Request: Sendable {
        public var method: String
        /// The encoded path, starting with `/`.
        public var path: String
        /// Encoded `(name, value)` pairs, in any order.
        public var query: [(String, String)]
        public var headers: [(String, String)]

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// What signing produced (the intermediate strings are for tests and for debugging a mismatch; none holds
    /// the secret).
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signedHeaders: String
        /// Hex HMAC-SHA256 of the string to sign.
        public var signature: String
        /// The `Authorization` header value.
        public var authorization: String
    }

    /// Signs `request` at `amzDate` (`YYYYMMDDTHHMMSSZ`) over `payloadHash`. The request's headers must
    /// already hold `x-amz-date` and `x-amz-content-sha256` (and `x-amz-security-token` with temporary
    /// credentials) when they are to be signed: every header given is signed.
    public func sign(_ request: Request, amzDate: String, payloadHash: String = SigV4Signer.unsignedPayload) -> Signature {
        let date = String(amzDate.prefix(8))
        var headers = request.headers.map { (lowercase($0.0), trimmed($0.1)) }
        headers.sort { $0.0 < $1.0 }
        let signedHeaders = headers.map(\.0).joined(separator: ";")
        let canonicalHeaders = headers.map { "\($0.0):\($0.1)\n" }.joined()
        let query = request.query.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let canonical = "\(request.method)\n\(request.path)\n\(query)\n\(canonicalHeaders)\n\(signedHeaders)\n\(payloadHash)"
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.hex(SHA256.hash(data: Array(canonical.utf8))))"
        let key = signingKey(date: date)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key)
        let signature = Self.hex(mac)
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(canonicalRequest: canonical, stringToSign: stringToSign, signedHeaders: signedHeaders, signature: signature, authorization: authorization)
    }

    /// The derived key for a day (`YYYYMMDD`).
    func signingKey(date: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        return mac(mac(mac(mac(secret, date), region), service), "aws4_request")
    }

    /// URI-encodes `s` as SigV4 wants: unreserved characters (`A-Za-z0-9-_.~`) as they are, every other byte
    /// of the UTF-8 as `%XX` (upper-case hex); `/` is kept when `keepSlash` (object key paths).
    public static func encode(_ s: String, keepSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        let digits = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where keepSlash:
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC).
    public static func amzDate(unixSeconds: Int) -> String {
        var t = time_t(unixSeconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return pad(tm.tm_year + 1900, 4) + pad(tm.tm_mon + 1, 2) + pad(tm.tm_mday, 2) + "T"
            + pad(tm.tm_hour, 2) + pad(tm.tm_min, 2) + pad(tm.tm_sec, 2) + "Z"
    }

    /// The current time as `amzDate`.
    public static func amzDateNow() -> String {
        amzDate(unixSeconds: Int(time(nil)))
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex(_ digest: SHA256.Digest) -> String { hex(Array(digest)) }
    static func hex(_ mac: HashedAuthenticationCode<SHA256>) -> String { hex(Array(mac)) }

    func lowercase(_ s: String) -> String { s.lowercased() }

    /// Trims the value and collapses runs of spaces to one (SigV4's canonical header value).
    func trimmed(_ s: String) -> String {
        var out = ""
        var space = false
        for ch in s.trimmingSpaces() {
            if ch == " " || ch == "\t" {
                space = true
                continue
            }
            if space && !out.isEmpty { out.append(" ") }
            space = false
            out.append(ch)
        }
        return out
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var start = startIndex
        var end = endIndex
        func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" }
        while start < end, isSpace(self[start]) { start = index(after: start) }
        while end > start, isSpace(self[index(before: end)]) { end = index(before: end) }
        return String(self[start..<end])
    }
}
