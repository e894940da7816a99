#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

/// What a HEAD says about an object.
public struct ObjectInfo: Sendable, Hashable {
    public var size: Int
    /// The `ETag` header as sent (quotes included), used in `If-Match`.
    public var etag: String?
    public var lastModified: String?

    public init(size: Int, etag: String?, lastModified: String? = nil) {
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// An entry of a bucket listing.
public struct ObjectSummary: Sendable, Hashable {
    public var key: String
    public var size: Int
    public var etag: String?
}

/// Requests to an S3-compatible service, signed with SigV4 (`UNSIGNED-PAYLOAD`): HEAD, ranged GET (see
/// `ObjectReader`), ListObjectsV2.
///
/// Its calls block the calling thread until the answer (they wait on an event loop future), so they must
/// not be made on an event loop.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer

    /// One HTTP client for the process (never shut down): connections are pooled across objects.
    static let http: HTTPClient = {
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(30)), decompression: .disabled)
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    /// Told each time a request is retried or a read resumed (a line for a person: what failed, from where).
    let onRetry: (@Sendable (String) -> Void)?

    public init(configuration: S3Configuration, onRetry: (@Sendable (String) -> Void)? = nil) {
        self.configuration = configuration
        self.onRetry = onRetry
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
    }

    /// A signed request for an object (or the bucket, with an empty key).
    func request(_ method: HTTPMethod, _ location: S3Location, query: [(String, String)] = [], headers extra: [(String, String)] = []) throws -> HTTPClient.Request {
        let c = configuration
        let path = c.path(bucket: location.bucket, key: location.key)
        let amzDate = SigV4Signer.amzDateNow()
        var signed = [("host", c.hostHeader(bucket: location.bucket)), ("x-amz-date", amzDate), ("x-amz-content-sha256", SigV4Signer.unsignedPayload)]
        signed += extra
        if let token = c.credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        let encoded = query.map { (SigV4Signer.encode($0.0, keepSlash: false), SigV4Signer.encode($0.1, keepSlash: false)) }
            .sorted { $0.0 < $1.0 }
        let signature = signer.sign(.init(method: method.rawValue, path: path, query: encoded, headers: signed), amzDate: amzDate)
        var headers = HTTPHeaders()
        for (name, value) in signed { headers.add(name: name, value: value) }
        headers.add(name: "authorization", value: signature.authorization)
        let url = c.url(bucket: location.bucket, path: path, query: encoded.map { "\($0.0)=\($0.1)" }.joined(separator: "&"))
        return try HTTPClient.Request(url: url, method: method, headers: headers)
    }

    var requestDeadline: NIODeadline { .now() + .milliseconds(Int64(configuration.requestTimeout * 1000)) }

    /// Sends a request whose body is small (HEAD, LIST, an error) and returns the whole answer (a body over
    /// 16 MiB is an error: a page of a listing is a few hundred KiB).
    func small(_ request: HTTPClient.Request, operation: String, location: String) throws -> HTTPClient.Response {
        do {
            let accumulator = ResponseAccumulator(request: request, maxBodySize: 16 << 20)
            return try S3Client.http.execute(request: request, delegate: accumulator, deadline: requestDeadline).wait()
        } catch {
            throw ObjectStoreError(operation: operation, location: location, message: "no answer from \(configuration.endpoint): \(error)")
        }
    }

    /// The error an answer with a failing status stands for.
    func failure(_ response: HTTPClient.Response, operation: String, location: S3Location) -> ObjectStoreError {
        let body = response.body.map { Array($0.readableBytesView.prefix(4096)) } ?? []
        return failure(status: Int(response.status.code), body: body, operation: operation, location: location)
    }

    /// The error a failing status and the start of its body stand for: what the status means for the object,
    /// then the service's own code and message.
    func failure(status: Int, body: [UInt8], operation: String, location: S3Location) -> ObjectStoreError {
        let (code, message) = ObjectStoreError.parseBody(body)
        let meaning = ObjectStoreError.explanation(status, bucket: location.bucket, key: location.key)
        let text = [meaning, message ?? ""].filter { !$0.isEmpty }.joined(separator: "; the service says: ")
        return ObjectStoreError(operation: operation, location: location.description, status: status, code: code,
                                message: configuration.credentials.redact(text))
    }

    /// HEAD: the object's size and ETag. A 403 or 404 throws at once, naming the status and the object; no
    /// answer at all is retried with backoff up to `retryTimeout`.
    public func head(_ location: S3Location) throws -> ObjectInfo {
        var attempt = 0
        let started = NIODeadline.now()
        while true {
            do {
                let response = try small(try request(.HEAD, location), operation: "HEAD", location: location.description)
                guard response.status.code == 200 else { throw failure(response, operation: "HEAD", location: location) }
                guard let length = response.headers.first(name: "content-length").flatMap({ Int($0) }), length >= 0 else {
                    throw ObjectStoreError(operation: "HEAD", location: location.description, status: 200, message: "the answer has no Content-Length")
                }
                return ObjectInfo(size: length, etag: response.headers.first(name: "etag"), lastModified: response.headers.first(name: "last-modified"))
            } catch let e as ObjectStoreError where e.isRetryable {
                attempt += 1
                guard let pause = Backoff.pause(attempt: attempt, since: started, timeout: configuration.retryTimeout) else { throw e }
                if attempt == 1 { onRetry?("\(e); retrying for up to \(Int(configuration.retryTimeout)) s") }
                Backoff.sleep(pause)
            }
        }
    }

    /// ListObjectsV2: every object whose key starts with `prefix` (all pages).
    public func list(bucket: String, prefix: String = "") throws -> [ObjectSummary] {
        var out: [ObjectSummary] = []
        var token: String?
        let location = S3Location(bucket: bucket, key: "")
        repeat {
            var query = [("list-type", "2"), ("max-keys", "1000")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let token { query.append(("continuation-token", token)) }
            let name = "s3://\(bucket)/\(prefix)"
            let response = try small(try request(.GET, location, query: query), operation: "LIST", location: name)
            guard response.status.code == 200 else { throw failure(response, operation: "LIST", location: location) }
            let text = String(decoding: response.body.map { Array($0.readableBytesView) } ?? [], as: UTF8.self)[...]
            for entry in XMLScan.all("Contents", in: text) {
                guard let key = XMLScan.first("Key", in: entry), let size = XMLScan.first("Size", in: entry).flatMap({ Int($0) }) else { continue }
                out.append(ObjectSummary(key: key, size: size, etag: XMLScan.first("ETag", in: entry)))
            }
            token = XMLScan.first("IsTruncated", in: text) == "true" ? XMLScan.first("NextContinuationToken", in: text) : nil
        } while token != nil
        return out
    }

    /// Opens an object for reading: a HEAD first (its size and ETag), unless `info` is given (from an earlier
    /// HEAD: the read then fails if the object is no longer that version).
    public func open(_ location: S3Location, info: ObjectInfo? = nil) throws -> ObjectReader {
        ObjectReader(client: self, location: location, info: try info ?? head(location))
    }
}

/// Exponential backoff up to a deadline.
enum Backoff {
    /// The pause before attempt `attempt` (1: the first retry), or nil when the deadline would pass.
    static func pause(attempt: Int, since start: NIODeadline, timeout: Double) -> TimeAmount? {
        let ms = min(100 << min(attempt - 1, 6), 5000)
        let pause = TimeAmount.milliseconds(Int64(ms))
        if NIODeadline.now() + pause > start + .milliseconds(Int64(timeout * 1000)) { return nil }
        return pause
    }

    static func sleep(_ t: TimeAmount) {
        var ts = timespec(tv_sec: Int(t.nanoseconds / 1_000_000_000), tv_nsec: Int(t.nanoseconds % 1_000_000_000))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}
