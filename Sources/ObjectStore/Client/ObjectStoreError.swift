/// A request to a bucket that failed: what was asked (operation and object), the HTTP status and the service's
/// error code when there was an answer, or the transport error when there was none. It never holds a secret.
public struct ObjectStoreError: Error, CustomStringConvertible, Sendable {
    /// `HEAD`, `GET bytes a-b`, `LIST`.
    public var operation: String
    public var location: String
    /// The HTTP status; nil when no answer came (connection refused, dropped, timed out).
    public var status: Int?
    /// The service's error code (`SignatureDoesNotMatch`, `NoSuchKey`, `PreconditionFailed`, …), from the XML body.
    public var code: String?
    /// The service's message, or what went wrong.
    public var message: String

    public init(operation: String, location: String, status: Int? = nil, code: String? = nil, message: String) {
        self.operation = operation
        self.location = location
        self.status = status
        self.code = code
        self.message = message
    }

    /// Whether retrying (resuming) may help: no answer, a 5xx, 408 or 429.
    public var isRetryable: Bool {
        guard let status else { return true }
        return status >= 500 || status == 408 || status == 429
    }

    public var description: String {
        var s = "\(location): \(operation): "
        if let status {
            s += "HTTP \(status) \(Self.reason(status))"
            if let code { s += " (\(code))" }
            if !message.isEmpty { s += ": \(message)" }
        } else {
            s += message
        }
        return s
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 307: "Temporary Redirect"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 412: "Precondition Failed"
        case 416: "Range Not Satisfiable"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }

    /// What a status means for an object read, when the body said nothing.
    static func explanation(_ status: Int, bucket: String, key: String) -> String {
        switch status {
        case 403: "access denied to bucket '\(bucket)', object '\(key)' (check the access key, the secret, the region and the bucket's policy)"
        case 404: "no object '\(key)' in bucket '\(bucket)' (or no such bucket)"
        case 412: "the object changed while it was read (its ETag no longer matches)"
        case 416: "the range asked for is past the object's end (the object changed size?)"
        case 301, 307: "the bucket is served elsewhere (another region or endpoint, or virtual-hosted vs path-style addressing)"
        default: ""
        }
    }

    /// The `<Code>` and `<Message>` of an S3 XML error body.
    static func parseBody(_ body: [UInt8]) -> (code: String?, message: String?) {
        let text = String(decoding: body, as: UTF8.self)
        return (XMLScan.first("Code", in: text[...]), XMLScan.first("Message", in: text[...]))
    }
}

/// Just enough XML for S3's answers (error bodies, ListObjectsV2): the text of simple elements.
enum XMLScan {
    /// The text of the first `<name>…</name>` in `text`, entities decoded.
    static func first(_ name: String, in text: Substring) -> String? {
        guard let open = text.firstRange(of: "<\(name)>") else { return nil }
        let rest = text[open.upperBound...]
        guard let close = rest.firstRange(of: "</\(name)>") else { return nil }
        return decode(rest[..<close.lowerBound])
    }

    /// Every `<name>…</name>` element's inner text.
    static func all(_ name: String, in text: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = text
        while let open = rest.firstRange(of: "<\(name)>") {
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "</\(name)>") else { break }
            out.append(after[..<close.lowerBound])
            rest = after[close.upperBound...]
        }
        return out
    }

    static func decode(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        return String(s).replacing("&lt;", with: "<").replacing("&gt;", with: ">").replacing("&quot;", with: "\"")
            .replacing("&apos;", with: "'").replacing("&#39;", with: "'").replacing("&amp;", with: "&")
    }
}
