import NIOCore
import RDBKit
import RedisWire
import Testing

@Suite("Handshake as a pure state machine")
struct HandshakeTests {
    static func commands(_ b: ByteBuffer) throws -> [[String]] {
        var b = b
        var out: [[String]] = []
        while let r = try RESPReplyDecoder().parse(&b, depth: 0) {
            guard case .array(let items?) = r else { break }
            out.append(items.map { $0.text ?? "?" })
        }
        return out
    }

    @Test("Login only: AUTH user password, SELECT; done after both replies")
    func login() throws {
        let e = RedisEndpoint(host: "h", port: 7, username: "alice", password: Secret("pw"), database: 3)
        var h = Handshake(.init(login: e))
        var b = ByteBuffer()
        h.write(into: &b)
        #expect(try Self.commands(b) == [["AUTH", "alice", "pw"], ["SELECT", "3"]])
        #expect(h.pending == [.auth, .select(3)])
        guard case .wait = h.receive(.simple("OK")) else { Issue.record("not waiting"); return }
        guard case .done = h.receive(.simple("OK")) else { Issue.record("not done"); return }
        #expect(h.isDone)
    }

    @Test("LOADING means retry; a refusal that quotes the password does not show it; SELECT refused")
    func refusals() throws {
        var c = Handshake.Configuration(address: "h:7", password: Secret("hunter2"))
        c.database = 5
        var h = Handshake(c)
        var b = ByteBuffer()
        h.write(into: &b)
        #expect(try Self.commands(b).map { $0[0] } == ["AUTH", "PING", "INFO", "CONFIG", "CONFIG", "INFO", "SELECT"])
        guard case .retry(let e) = h.receive(.error("LOADING Redis is loading the dataset in memory")) else {
            Issue.record("no retry")
            return
        }
        #expect(e.code == .loading)

        var h2 = Handshake(c)
        h2.write(into: &b)
        guard case .refused(let r) = h2.receive(.error("WRONGPASS bad password hunter2")) else { Issue.record("not refused"); return }
        #expect(r.description == "authentication to h:7 failed: WRONGPASS bad password ***")
        #expect(r.kind == .handshakeRefused && r.serverError?.code == .wrongPass)

        var h3 = Handshake(c)
        h3.write(into: &b)
        let zset: RESPReply = .array(["zset-max-ziplist-entries", "256", "zset-max-ziplist-value", "100"].map { .bulk(Array($0.utf8)) })
        for reply: RESPReply in [.simple("OK"), .simple("PONG"), .bulk(Array("redis_version:6.2.14\r\n".utf8)), .array([.bulk(Array("databases".utf8)), .bulk(Array("4".utf8))]), zset, .bulk([])] {
            guard case .wait = h3.receive(reply) else { Issue.record("not waiting at \(reply)"); return }
        }
        #expect(h3.server?.databases == 4 && h3.server?.rdbVersion == 9)
        #expect(h3.server?.compactSortedSets == CompactSortedSetLimits(entries: 256, value: 100))
        guard case .refused(let s) = h3.receive(.error("ERR DB index is out of range")) else { Issue.record("not refused"); return }
        #expect(s.description == "SELECT 5 failed on the target: ERR DB index is out of range")
    }

    /// `CONFIG GET zset-max-*` gives which sorted sets the target keeps compact (7.0 answers with both the
    /// listpack names and their ziplist aliases; 6.2 with the ziplist names); a refused CONFIG leaves it unknown
    /// and the handshake goes on.
    @Test func compactSortedSetLimits() throws {
        func run(_ zset: RESPReply) -> ServerInfo? {
            var h = Handshake(Handshake.Configuration(address: "h:7"))
            var b = ByteBuffer()
            h.write(into: &b)
            let info: RESPReply = .bulk(Array("redis_version:7.0.15\r\n".utf8))
            for reply: RESPReply in [.simple("PONG"), info, .array([.bulk(Array("databases".utf8)), .bulk(Array("16".utf8))]), zset] {
                guard case .wait = h.receive(reply) else { Issue.record("not waiting at \(reply)"); return nil }
            }
            guard case .done(let server) = h.receive(.bulk([])) else { Issue.record("not done"); return nil }
            return server
        }
        func pairs(_ p: [String]) -> RESPReply { .array(p.map { .bulk(Array($0.utf8)) }) }
        let both = pairs(["zset-max-listpack-entries", "512", "zset-max-listpack-value", "2048",
                          "zset-max-ziplist-entries", "512", "zset-max-ziplist-value", "2048"])
        #expect(run(both)?.compactSortedSets == CompactSortedSetLimits(entries: 512, value: 2048))
        #expect(run(pairs(["zset-max-listpack-value", "70"]))?.compactSortedSets == CompactSortedSetLimits(entries: 128, value: 70))
        let refused = run(.error("ERR unknown command 'CONFIG'"))
        #expect(refused != nil && refused?.compactSortedSets == nil && refused?.databases == 16)
        #expect(run(pairs([]))?.compactSortedSets == nil)
    }
}
