#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A TCP proxy on 127.0.0.1 that cuts connections: for the n-th connection accepted (0-based), `cut(n)` gives
/// how many bytes of the server's answers pass before both sides are closed (nil: the connection is left
/// alone), for the first `maxCuts` connections that get that far. Plain sockets and one thread per direction;
/// for tests of reads that resume after a dropped connection. With `holdAt`, what the client sends is held
/// from the first read holding that byte sequence until `release()`: the client stalls there, mid-stream.
public final class DroppingProxy: @unchecked Sendable {
    public private(set) var port = 0
    let upstreamPort: Int
    let cut: @Sendable (Int) -> Int?
    let maxCuts: Int
    let listener: Int32
    let lock = NSLock()
    var accepted = 0
    var cutCount = 0
    var stopped = false
    var open: Set<Int32> = []

    /// GET requests still to be answered `503 Service Unavailable` by the proxy itself.
    var unavailable: Int
    var unavailableCount = 0

    let holdAt: [UInt8]?
    let gate = NSCondition()
    var holding = false
    var released = false

    /// - Parameter unavailable: the first this many GET requests (each on a connection of its own) are answered
    ///   503 by the proxy instead of being passed on.
    public init(upstreamPort: Int, maxCuts: Int = .max, unavailable: Int = 0, holdAt: [UInt8]? = nil,
                cut: @escaping @Sendable (Int) -> Int? = { _ in nil }) throws {
        self.holdAt = holdAt
        self.upstreamPort = upstreamPort
        self.maxCuts = maxCuts
        self.unavailable = unavailable
        self.cut = cut
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw Spawn.Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Spawn.loopback(0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &len) == 0 }
        }
        guard ok else {
            close(listener)
            throw Spawn.Failure(description: "cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// Connections cut so far.
    public var cuts: Int { lock.withLock { cutCount } }
    /// Requests answered 503 so far.
    public var unavailableAnswers: Int { lock.withLock { unavailableCount } }
    /// Connections accepted so far.
    public var connections: Int { lock.withLock { accepted } }

    /// Whether a client's bytes are being held at the `holdAt` sequence.
    public var isHolding: Bool { gate.withLock { holding } }

    /// Lets held bytes (and everything after) pass.
    public func release() {
        gate.withLock {
            released = true
            gate.broadcast()
        }
    }

    public func stop() {
        release()
        let fds: [Int32] = lock.withLock {
            if stopped { return [] }
            stopped = true
            return Array(open)
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func acceptLoop() {
        defer { close(listener) }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let index: Int? = lock.withLock {
                if stopped { return nil }
                accepted += 1
                open.insert(client)
                return accepted - 1
            }
            guard let index else {
                close(client)
                return
            }
            Thread.detachNewThread { [self] in serve(client, limit: cut(index)) }
        }
    }

    func serve(_ client: Int32, limit: Int?) {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = Spawn.loopback(upstreamPort)
        let connected = upstream >= 0 && withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        lock.withLock { _ = open.insert(upstream) }
        defer {
            lock.withLock {
                open.remove(client)
                open.remove(upstream)
            }
            close(client)
            if upstream >= 0 { close(upstream) }
        }
        guard connected else { return }
        if lock.withLock({ unavailable > 0 }) {
            // Look at the request: a GET is answered 503 here (what an overloaded service says).
            var head = [UInt8](repeating: 0, count: 4096)
            let n = head.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            let isGet = n >= 4 && head[0..<4] == Array("GET ".utf8)[...]
            let answer = isGet && lock.withLock {
                guard unavailable > 0 else { return false }
                unavailable -= 1
                unavailableCount += 1
                return true
            }
            if answer {
                let reply = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: 71\r\nConnection: close\r\n\r\n<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>   ".utf8)
                _ = reply.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return
            }
            let sent = head.withUnsafeBytes { send(upstream, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
            guard sent == n else { return }
        }
        // Requests go up on another thread; answers come down here, counted.
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            var tail: [UInt8] = []
            DroppingProxy.pump(from: client, to: upstream, limit: nil, before: { bytes in
                guard let marker = holdAt, !gate.withLock({ released }) else { return }
                let window = tail + bytes
                tail = Array(window.suffix(marker.count - 1))
                guard window.count >= marker.count,
                      (0...(window.count - marker.count)).contains(where: { window[$0..<($0 + marker.count)].elementsEqual(marker) }) else { return }
                gate.withLock {
                    holding = true
                    while !released { gate.wait() }
                    holding = false
                }
            })
            shutdown(upstream, Int32(SHUT_WR))
            done.signal()
        }
        DroppingProxy.pump(from: upstream, to: client, limit: limit) { [self] in
            lock.withLock {
                guard cutCount < maxCuts else { return false }
                cutCount += 1
                return true
            }
        }
        shutdown(client, Int32(SHUT_RDWR))
        shutdown(upstream, Int32(SHUT_RDWR))
        done.wait()
    }

    /// Copies until the end of the stream, or until `limit` bytes when `cutHere()` agrees; returns whether it
    /// stopped at the limit.
    @discardableResult
    static func pump(from: Int32, to: Int32, limit: Int?, cutHere: () -> Bool = { true },
                     before: (ArraySlice<UInt8>) -> Void = { _ in }) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var passed = 0
        var limit = limit
        while true {
            if let l = limit, passed >= l {
                if cutHere() { return true }
                limit = nil
            }
            let want = min(buffer.count, limit.map { $0 - passed } ?? buffer.count)
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, want, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            before(buffer[0..<n])
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m < 0 && errno == EINTR { continue }
                if m <= 0 { return false }
                sent += m
            }
            passed += n
        }
    }
}
