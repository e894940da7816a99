import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One ranged GET of an object, fetched whole into a buffer on an event loop, resumed at the last byte received
/// when the connection drops or the service answers 5xx, with backoff, until `retryTimeout` passes without
/// progress (64 KiB, or the rest of the range, in one attempt). `If-Match` carries the ETag from the HEAD, and
/// every answer's ETag and `Content-Range` total are checked too (some services ignore `If-Match`), so a
/// replaced object fails instead of mixing versions.
///
/// Everything but `init` and `cancel` runs on `eventLoop`.
final class RangeFetch: @unchecked Sendable {
    let client: S3Client
    let location: S3Location
    let info: ObjectInfo
    let start: Int
    let length: Int
    let eventLoop: EventLoop
    let promise: EventLoopPromise<ByteBuffer>
    let stats: ObjectReadStats
    /// The bytes received so far.
    var buffer: ByteBuffer
    /// Failed attempts since bytes last arrived, and when the first of them failed.
    var failures = 0
    var failingSince: NIODeadline?
    var task: HTTPClient.Task<Void>?
    var cancelled = false
    var finished = false

    init(client: S3Client, location: S3Location, info: ObjectInfo, start: Int, length: Int, eventLoop: EventLoop, stats: ObjectReadStats) {
        self.client = client
        self.location = location
        self.info = info
        self.start = start
        self.length = length
        self.eventLoop = eventLoop
        self.stats = stats
        promise = eventLoop.makePromise(of: ByteBuffer.self)
        buffer = ByteBufferAllocator().buffer(capacity: length)
    }

    var future: EventLoopFuture<ByteBuffer> { promise.futureResult }

    /// The bytes an attempt must bring (or the rest of the range) to count as progress.
    static var progressBytes: Int { 64 << 10 }

    func begin() { eventLoop.execute { self.attempt() } }

    /// Stops the fetch (the reader is gone or failed); the future fails.
    func cancel() {
        eventLoop.execute {
            self.cancelled = true
            self.task?.cancel()
            self.fail(ObjectStoreError(operation: self.operation, location: self.location.description, message: "cancelled"))
        }
    }

    var operation: String { "GET bytes \(start + buffer.readableBytes)-\(start + length - 1)" }

    func attempt() {
        guard !cancelled, !finished else { return }
        let from = start + buffer.readableBytes
        var headers = [("range", "bytes=\(from)-\(start + length - 1)")]
        if let etag = info.etag { headers.append(("if-match", etag)) }
        let request: HTTPClient.Request
        do {
            request = try client.request(.GET, location, headers: headers)
        } catch {
            return fail(ObjectStoreError(operation: operation, location: location.description, message: "\(error)"))
        }
        let delegate = RangeDelegate(fetch: self, from: from)
        let t = S3Client.http.execute(request: request, delegate: delegate, eventLoop: .delegate(on: eventLoop), deadline: client.requestDeadline)
        task = t
        t.futureResult.hop(to: eventLoop).whenComplete { result in
            let error: Error?
            switch result {
            case .success: error = nil
            case .failure(let e): error = e
            }
            self.attemptEnded(delegate, error: error, from: from)
        }
    }

    func attemptEnded(_ d: RangeDelegate, error: Error?, from: Int) {
        guard !finished else { return }
        if cancelled { return fail(ObjectStoreError(operation: operation, location: location.description, message: "cancelled")) }
        if let refusal = d.refusal { return fail(refusal) }
        // Progress restarts the retry budget only when it is real: a service that drips a few bytes before each
        // stall would otherwise be resumed for ever.
        let got = start + buffer.readableBytes - from
        if got >= min(Self.progressBytes, start + length - from) && got > 0 {
            failures = 0
            failingSince = nil
        }
        if buffer.readableBytes == length { return succeed() }
        let problem: ObjectStoreError
        if let status = d.status, !(200..<300).contains(status) {
            problem = client.failure(status: status, body: d.errorBody, operation: "GET bytes \(from)-\(start + length - 1)", location: location)
        } else {
            let why = error.map { "\($0)" } ?? "the answer ended early"
            problem = ObjectStoreError(
                operation: "GET bytes \(from)-\(start + length - 1)", location: location.description,
                message: "connection lost after \(start + buffer.readableBytes) bytes of \(info.size): \(why)")
        }
        guard problem.isRetryable else { return fail(problem) }
        failures += 1
        let since = failingSince ?? .now()
        failingSince = since
        guard let pause = Backoff.pause(attempt: failures, since: since, timeout: client.configuration.retryTimeout) else {
            var e = problem
            e.message += " (gave up after \(failures) attempts in \(Int(client.configuration.retryTimeout)) s)"
            return fail(e)
        }
        stats.recordResume(at: start + buffer.readableBytes)
        client.onRetry?("\(problem); resuming at byte \(start + buffer.readableBytes)")
        eventLoop.scheduleTask(in: pause) { self.attempt() }
    }

    func succeed() {
        finished = true
        promise.succeed(buffer)
    }

    func fail(_ e: ObjectStoreError) {
        guard !finished else { return }
        finished = true
        promise.fail(e)
    }
}

/// Receives one attempt's answer: checks the status, the range and the ETag, and appends the body to the
/// fetch's buffer (up to the range's end).
final class RangeDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void
    let fetch: RangeFetch
    let from: Int
    var status: Int?
    /// A failure no retry can mend (the object changed, the range is wrong).
    var refusal: ObjectStoreError?
    /// The start of an error answer's body.
    var errorBody: [UInt8] = []

    init(fetch: RangeFetch, from: Int) {
        self.fetch = fetch
        self.from = from
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let code = Int(head.status.code)
        status = code
        let f = fetch
        let op = "GET bytes \(from)-\(f.start + f.length - 1)"
        func refuse(_ message: String) {
            refusal = ObjectStoreError(operation: op, location: f.location.description, status: code, message: message)
            task.cancel()
        }
        guard (200..<300).contains(code) else { return task.eventLoop.makeSucceededVoidFuture() }
        if let etag = f.info.etag, let now = head.headers.first(name: "etag"), now != etag {
            refuse("the object changed while it was read: its ETag is now \(now), it was \(etag)")
        } else if code == 206 {
            // Content-Range: bytes first-last/total
            if let r = head.headers.first(name: "content-range"), let parsed = Self.contentRange(r) {
                if parsed.first != from {
                    refuse("the service sent bytes from \(parsed.first), not from \(from) as asked")
                } else if let total = parsed.total, total != f.info.size {
                    refuse("the object changed while it was read: it has \(total) bytes now, \(f.info.size) before")
                }
            }
        } else if code == 200 && from != 0 {
            refuse("the service ignored the Range header (answered 200 with the whole object)")
        } else if code != 200 {
            refuse("unexpected status for a ranged GET")
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        guard refusal == nil, let status else { return task.eventLoop.makeSucceededVoidFuture() }
        if (200..<300).contains(status) {
            var part = part
            let room = fetch.length - fetch.buffer.readableBytes
            if part.readableBytes > room {
                // A 200 with the whole object: keep the range, drop the rest.
                if room > 0, let slice = part.readSlice(length: room) { fetch.buffer.writeImmutableBuffer(slice) }
                task.cancel()
            } else {
                fetch.buffer.writeBuffer(&part)
            }
        } else if errorBody.count < 4096 {
            errorBody += part.readableBytesView.prefix(4096 - errorBody.count)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {}

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}

    /// `bytes first-last/total` (total may be `*`).
    static func contentRange(_ value: String) -> (first: Int, last: Int, total: Int?)? {
        guard value.hasPrefix("bytes ") else { return nil }
        let rest = value.dropFirst(6)
        guard let dash = rest.firstIndex(of: "-"), let slash = rest.firstIndex(of: "/"),
              let first = Int(rest[..<dash]), let last = Int(rest[rest.index(after: dash)..<slash]) else { return nil }
        return (first, last, Int(rest[rest.index(after: slash)...]))
    }
}
