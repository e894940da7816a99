import RDBReplication
import Testing

/// The replica side's framing with hand-made bytes: handshake replies, keepalives, both snapshot framings,
/// cut at every byte.
@Suite("Replication framing")
struct ReplicationFramingTests {
    struct Collected: Equatable {
        var events: [ReplicationFraming.Event] = []
        var rdb: [UInt8] = []
        var stream: [UInt8] = []
    }

    static func feed(_ bytes: [UInt8], cuts: [Int], replies: Int) throws -> Collected {
        var f = ReplicationFraming(handshakeReplies: replies)
        var c = Collected()
        var from = 0
        for cut in cuts + [bytes.count] where cut >= from {
            try bytes[from..<cut].withUnsafeBytes { raw in
                try f.feed(raw) { out in
                    switch out {
                    case .event(let e): c.events.append(e)
                    case .rdb(let b): c.rdb += b
                    case .stream(let b): c.stream += b
                    }
                }
            }
            from = cut
        }
        return c
    }

    static let replid = String(repeating: "ab", count: 20)
    static let mark = Array("0123456789abcdef0123456789abcdef01234567".utf8)
    /// An RDB-like payload that holds most of the mark (39 of its 40 bytes) and newlines.
    static let payload: [UInt8] = Array("REDIS0011\r\n\n".utf8) + mark.dropLast() + [0x00, 0xFF] + mark.prefix(20) + [1, 2, 3]
    static let stream = Array("*1\r\n$4\r\nping\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".utf8)

    static func expected(diskless: Bool) -> Collected {
        Collected(
            events: [.reply("+PONG"), .reply("+OK"), .keepalive, .reply("+OK"), .keepalive, .keepalive,
                     .fullResync(replid: replid, offset: 157), .keepalive,
                     .rdbBegin(length: diskless ? nil : payload.count), .rdbEnd(length: payload.count)],
            rdb: payload, stream: stream)
    }

    static func bytes(diskless: Bool) -> [UInt8] {
        var b = Array("+PONG\r\n+OK\r\n\n+OK\r\n\n\n+FULLRESYNC \(replid) 157\r\n\n".utf8)
        if diskless {
            b += Array("$EOF:".utf8) + mark + Array("\r\n".utf8) + payload + mark
        } else {
            b += Array("$\(payload.count)\r\n".utf8) + payload
        }
        return b + stream
    }

    @Test("$<len> framing cut in two at every byte, and byte by byte", arguments: [false, true])
    func everyCut(diskless: Bool) throws {
        let b = Self.bytes(diskless: diskless)
        let want = Self.expected(diskless: diskless)
        for cut in 0...b.count {
            let got = try Self.feed(b, cuts: [cut], replies: 3)
            #expect(got == want, "cut at \(cut)")
        }
        let one = try Self.feed(b, cuts: Array(1..<b.count), replies: 3)
        #expect(one == want)
    }

    @Test("The EOF mark cut across three reads anywhere")
    func markAcrossReads() throws {
        let b = Self.bytes(diskless: true)
        let want = Self.expected(diskless: true)
        let markStart = b.count - Self.stream.count - Self.mark.count
        for i in (markStart - 45)...(markStart + 41) {
            for j in [i + 1, i + 7, i + 39, i + 40] where j < b.count {
                #expect(try Self.feed(b, cuts: [i, j], replies: 3) == want, "cuts \(i), \(j)")
            }
        }
    }

    @Test("+CONTINUE goes straight to the stream; refusals are events")
    func continueAndRefusals() throws {
        let b = Array("+PONG\r\n+CONTINUE \(Self.replid)\r\n".utf8) + Self.stream
        let got = try Self.feed(b, cuts: [9], replies: 1)
        #expect(got.events == [.reply("+PONG"), .continued(replid: Self.replid)])
        #expect(got.stream == Self.stream)

        let plain = try Self.feed(Array("+CONTINUE\r\n".utf8), cuts: [], replies: 0)
        #expect(plain.events == [.continued(replid: nil)])

        let refused = try Self.feed(Array("-NOAUTH Authentication required.\r\n+OK\r\n-ERR unknown command 'PSYNC'\r\n".utf8), cuts: [], replies: 2)
        #expect(refused.events == [.reply("-NOAUTH Authentication required."), .reply("+OK"), .refused("-ERR unknown command 'PSYNC'")])
    }

    @Test("Malformed replies are errors, not crashes")
    func malformed() {
        #expect(throws: ReplicationFraming.ProtocolError.self) {
            try Self.feed(Array("+FULLRESYNC short 1\r\n".utf8), cuts: [], replies: 0)
        }
        #expect(throws: ReplicationFraming.ProtocolError.self) {
            try Self.feed(Array("+FULLRESYNC \(Self.replid) 1\r\n$EOF:abc\r\n".utf8), cuts: [], replies: 0)
        }
        #expect(throws: ReplicationFraming.ProtocolError.self) {
            try Self.feed([UInt8](repeating: 0x41, count: 5000), cuts: [], replies: 0)
        }
    }
}
