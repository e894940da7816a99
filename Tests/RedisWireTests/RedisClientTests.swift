#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import RedisWire
import Testing

@Suite("RedisClient against a server that stops answering")
struct RedisClientTests {
    /// A listening socket nobody reads from: connections are accepted by the kernel and never answered.
    static func silentListener() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 8) == 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    @Test("No reply within the reply timeout: send throws a timeout, and later sends fail at once")
    func silentServer() throws {
        let (fd, port) = try Self.silentListener()
        defer { close(fd) }
        let started = NIODeadline.now()
        do {
            let c = try RedisClient(RedisEndpoint(host: "127.0.0.1", port: port), timeoutSeconds: 2, replyTimeoutSeconds: 1)
            let error = #expect(throws: ConnectionError.self) { try c.send(["PING"]) }
            #expect(error?.kind == .timeout && error?.description.contains("no reply from 127.0.0.1:\(port) within 1 s") == true,
                    "\(String(describing: error))")
            let again = #expect(throws: ConnectionError.self) { try c.send(["PING"]) }
            #expect(again?.kind == .timeout)
        } catch let e as ConnectionError {
            // A handshake sent at connect time meets the same timeout.
            #expect(e.kind == .timeout, "\(e)")
        }
        #expect(NIODeadline.now() - started < .seconds(10))
    }
}
