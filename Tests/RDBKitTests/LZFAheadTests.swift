import Foundation
import Testing
import RDBKit

/// The quicklist read-ahead (`RDBDecoderOptions.decompressAhead`, LZF on a second thread) must be
/// invisible: the same events, errors and offsets as the node-by-node loop.
@Suite("LZF read-ahead of quicklist nodes")
struct LZFAheadTests {
    static func options(ahead: Bool, salvage: Bool = false) -> RDBDecoderOptions {
        var o = RDBDecoderOptions()
        o.decompressAhead = ahead
        o.salvage = salvage
        return o
    }

    /// An LZF string of `raw`; `lie` adds to the declared size (the block then fails to decompress).
    static func lzf(_ raw: [UInt8], lie: Int = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: raw.count + 64)
        let n = raw.withUnsafeBytes { i in out.withUnsafeMutableBytes { LZF.compress(i, into: $0) } }
        precondition(n > 0 && n < raw.count, "test data must compress")
        return [0xC3] + RDBBuilder.length(UInt64(n)) + RDBBuilder.length(UInt64(raw.count + lie)) + out[0..<n]
    }

    /// Elements of node `i`: compressible text and integers.
    static func elements(_ i: Int, _ n: Int) -> [String] {
        (0..<n).map { j in j % 3 == 0 ? String(i * 1000 + j) : "node-\(i)-element-\(j)-" + String(repeating: "x", count: j % 40) }
    }

    /// A Redis 7 quicklist (type 18) of `nodes` nodes: most LZF-compressed listpacks, some stored raw,
    /// a PLAIN node with an integer, a PLAIN LZF node, and one listpack larger than `LZFAhead.maxBlock`.
    static func quicklist2(nodes: Int, corrupt: Int? = nil, badContainer: Int? = nil) -> [UInt8] {
        var v = RDBBuilder.length(UInt64(nodes))
        for i in 0..<nodes {
            if i == badContainer {
                v += RDBBuilder.length(7) + RDBBuilder.string("?")
                continue
            }
            switch i % 11 {
            case 5:
                v += RDBBuilder.length(1) + [0xC1] + RDBBuilder.le(Int16(i))  // PLAIN, int-encoded
            case 7:
                v += RDBBuilder.length(1) + lzf(Array(String(repeating: "plain-\(i)-", count: 30).utf8))
            case 9:
                let lp = RDBBuilder.listpack(elements(i, 20).map { RDBBuilder.lpString($0) })
                v += RDBBuilder.length(2) + RDBBuilder.string(lp)  // stored uncompressed
            default:
                // Node 13 is larger than the blocks handed to the worker (1 MiB).
                let n = i == 13 ? 50000 : 60
                let lp = RDBBuilder.listpack(elements(i, n).map { Int64($0).map { RDBBuilder.lpInt($0) } ?? RDBBuilder.lpString($0) })
                precondition(i != 13 || lp.count > 1 << 20)
                v += RDBBuilder.length(2) + lzf(lp, lie: i == corrupt ? 1 : 0)
            }
        }
        return v
    }

    /// A Redis 3.2–6.2 quicklist (type 14) of LZF ziplists.
    static func quicklist1(nodes: Int) -> [UInt8] {
        var v = RDBBuilder.length(UInt64(nodes))
        for i in 0..<nodes {
            let zl = RDBBuilder.ziplist(elements(i, 50).map { RDBBuilder.zlString(String($0.prefix(60))) })
            v += i % 4 == 1 ? RDBBuilder.string(zl) : lzf(zl)
        }
        return v
    }

    static func file(_ values: [(UInt8, [UInt8])], version: Int = 10) -> [UInt8] {
        var b = RDBBuilder(version: version)
        b.key(type: 0, "before", value: RDBBuilder.string("1"))
        for (i, (type, value)) in values.enumerated() { b.key(type: type, "list\(i)", value: value) }
        b.key(type: 0, "after", value: RDBBuilder.string("2"))
        return b.finished()
    }

    @Test("Hand-made quicklists of every node kind: same events with and without the read-ahead")
    func sameEvents() throws {
        let bytes = Self.file([(18, Self.quicklist2(nodes: 40)), (18, Self.quicklist2(nodes: 15)), (14, Self.quicklist1(nodes: 70))], version: 10)
        let plain = try record(bytes, options: Self.options(ahead: false))
        let ahead = try record(bytes, options: Self.options(ahead: true))
        #expect(plain.count > 40 * 60)
        #expect(plain == ahead)
        // Many decodes in a row on one parser each: the ring is drained and reused.
        for _ in 0..<20 { #expect(try record(bytes, options: Self.options(ahead: true)) == plain) }
    }

    @Test("A corrupt LZF node: same events before it, same error and offset")
    func corruptNode() throws {
        for at in [0, 3, 30, 39] {
            let bytes = Self.file([(18, Self.quicklist2(nodes: 40, corrupt: at))])
            var a = Recorder(), b = Recorder()
            let e1 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &a, options: Self.options(ahead: false)) }
            let e2 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &b, options: Self.options(ahead: true)) }
            #expect(e1?.code == .lzf && e2?.code == .lzf, "node \(at): \(String(describing: e1)) / \(String(describing: e2))")
            #expect(e1?.offset == e2?.offset && e1?.key == e2?.key)
            #expect(a.events == b.events && a.events.count > 2)
        }
    }

    @Test("An unknown container: same events before it, same error; salvage goes on to the next key")
    func badFraming() throws {
        let bytes = Self.file([(18, Self.quicklist2(nodes: 40, badContainer: 25)), (18, Self.quicklist2(nodes: 30, corrupt: 21))])
        var a = Recorder(), b = Recorder()
        let e1 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &a, options: Self.options(ahead: false)) }
        let e2 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &b, options: Self.options(ahead: true)) }
        #expect(e1 != nil && e1?.offset == e2?.offset && e1?.code == e2?.code)
        #expect(a.events == b.events && a.events.contains("list node-24-element-1-x"))
        var s1 = AbortCounter(), s2 = AbortCounter()
        _ = try RDBReader.decode(bytes: bytes, into: &s1, options: Self.options(ahead: false, salvage: true))
        _ = try RDBReader.decode(bytes: bytes, into: &s2, options: Self.options(ahead: true, salvage: true))
        #expect(s1.aborted.count == 2 && s1.ended == 2, "\(s1.aborted) \(s1.ended)")
        #expect(s1.aborted.map(\.key) == s2.aborted.map(\.key) && s1.aborted.map(\.range) == s2.aborted.map(\.range))
        #expect(s1.ended == s2.ended)
    }

    @Test("Long lists written by real servers (quicklist of listpacks and of ziplists)", arguments: [RedisServer.Kind.redis70, .redis62])
    func serverLists(kind: RedisServer.Kind) throws {
        let server = try RedisServer(kind: kind)
        defer { server.stop() }
        var resp: [UInt8] = []
        func command(_ args: [String]) {
            resp += Array("*\(args.count)\r\n".utf8)
            for a in args { resp += Array("$\(a.utf8.count)\r\n\(a)\r\n".utf8) }
        }
        for l in 0..<3 {
            for chunk in 0..<40 {
                command(["RPUSH", "list\(l)"] + (0..<250).map { i in
                    let n = chunk * 250 + i
                    return n % 5 == 0 ? String(n * (l + 1)) : "value-\(l)-\(n)-" + String(repeating: "abc", count: n % 17)
                })
            }
        }
        let piped = try server.pipe(resp)
        #expect(piped.errors == 0)
        let bytes = try server.save()
        let plain = try record(bytes, options: Self.options(ahead: false))
        let ahead = try record(bytes, options: Self.options(ahead: true))
        #expect(plain == ahead)
        // The elements are the server's, in order.
        let listed = try server.cli(["LRANGE", "list1", "0", "-1"]).split(separator: "\n").map(String.init)
        #expect(listed.count == 10_000)
        var decoded: [String] = []
        var inList1 = false
        for e in ahead {
            if e.hasPrefix("key ") { inList1 = e.hasPrefix("key list1 ") } else if inList1, e.hasPrefix("list ") {
                decoded.append(String(e.dropFirst(5).drop(while: { $0 == "#" })))
            }
        }
        #expect(decoded == listed)
    }
}
