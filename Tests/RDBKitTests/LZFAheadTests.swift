import Foundation
import Testing
import RDBKit

/// The quicklist read-ahead (`RDBDecoderOptions.decompressAhead`, LZF on a second thread) must be
/// invisible: the same events, errors and offsets as the node-by-node loop.
@Suite("LZF read-ahead of quicklist and stream nodes")
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

    /// A stream (type 15) of `nodes` nodes of 30 entries each (2 master fields; every third entry has
    /// its own fields, every seventh is deleted): most node listpacks LZF-compressed, some raw.
    /// `corrupt` lies about a node's LZF size, `badKey` gives a node a 15-byte key, `intBlob` stores a
    /// node's listpack as an integer-encoded string.
    static func stream(nodes: Int, corrupt: Int? = nil, badKey: Int? = nil, intBlob: Int? = nil) -> [UInt8] {
        var v = RDBBuilder.length(UInt64(nodes))
        var last = (ms: UInt64(0), seq: UInt64(0))
        var live = 0
        for i in 0..<nodes {
            let ms = UInt64(1_700_000_000_000 + i * 100)
            v += RDBBuilder.string(i == badKey ? [UInt8](repeating: 1, count: 15) : withUnsafeBytes(of: ms.bigEndian, Array.init) + [UInt8](repeating: 0, count: 8))
            if i == intBlob {
                v += [0xC0, 7]
                continue
            }
            var deleted = 0
            var entries: [[UInt8]] = []
            for e in 0..<30 {
                let isDeleted = e % 7 == 6
                if isDeleted { deleted += 1 } else { live += 1 }
                let own = e % 3 == 1
                entries += [RDBBuilder.lpInt(Int64((own ? 0 : 2) | (isDeleted ? 1 : 0))), RDBBuilder.lpInt(Int64(e / 2)), RDBBuilder.lpInt(Int64(e % 2))]
                if own {
                    entries += [RDBBuilder.lpInt(3)]
                    for f in 0..<3 { entries += [RDBBuilder.lpString("own\(f)"), RDBBuilder.lpString("node-\(i)-entry-\(e)-" + String(repeating: "y", count: f * 9))] }
                    entries += [RDBBuilder.lpInt(3 * 2 + 4)]
                } else {
                    entries += [RDBBuilder.lpString("value-\(i)-\(e)-" + String(repeating: "z", count: e)), RDBBuilder.lpInt(Int64(i * 100 + e))]
                    entries += [RDBBuilder.lpInt(2 + 3)]
                }
                last = (ms + UInt64(e / 2), UInt64(e % 2))
            }
            let master = [RDBBuilder.lpInt(Int64(30 - deleted)), RDBBuilder.lpInt(Int64(deleted)), RDBBuilder.lpInt(2),
                          RDBBuilder.lpString("text"), RDBBuilder.lpString("number"), RDBBuilder.lpInt(0)]
            let lp = RDBBuilder.listpack(master + entries)
            v += i % 7 == 3 ? RDBBuilder.string(lp) : lzf(lp, lie: i == corrupt ? 1 : 0)
        }
        v += RDBBuilder.length(UInt64(live)) + RDBBuilder.length(last.ms) + RDBBuilder.length(last.seq)
        v += RDBBuilder.length(0)  // no consumer groups
        return v
    }

    /// One command in RESP.
    static func resp(_ args: [String]) -> [UInt8] {
        Array("*\(args.count)\r\n".utf8) + args.flatMap { Array("$\($0.utf8.count)\r\n\($0)\r\n".utf8) }
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

    @Test("Hand-made streams: same events with and without the read-ahead")
    func sameStreamEvents() throws {
        let bytes = Self.file([(15, Self.stream(nodes: 40)), (15, Self.stream(nodes: 15)), (15, Self.stream(nodes: 16))])
        let plain = try record(bytes, options: Self.options(ahead: false))
        #expect(plain.filter { $0.hasPrefix("entry ") }.count == 71 * 26)
        #expect(plain.contains("field own2=node-39-entry-28-yyyyyyyyyyyyyyyyyy"))
        for _ in 0..<10 { #expect(try record(bytes, options: Self.options(ahead: true)) == plain) }
    }

    @Test("A bad stream node (corrupt LZF, short node key, integer blob): same events before it, same error")
    func badStreamNodes() throws {
        let cases: [(String, [UInt8], RDBError.Code)] = [0, 5, 20, 39].map { ("lzf \($0)", Self.stream(nodes: 40, corrupt: $0), .lzf) }
            + [0, 17, 39].map { ("key \($0)", Self.stream(nodes: 40, badKey: $0), .corruptEncoding) }
            + [2, 30].map { ("int \($0)", Self.stream(nodes: 40, intBlob: $0), .corruptEncoding) }
        for (name, value, code) in cases {
            let bytes = Self.file([(15, Self.stream(nodes: 20)), (15, value)])
            var a = Recorder(), b = Recorder()
            let e1 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &a, options: Self.options(ahead: false)) }
            let e2 = #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: bytes, into: &b, options: Self.options(ahead: true)) }
            #expect(e1?.code == code && e2?.code == code, "\(name): \(String(describing: e1)) / \(String(describing: e2))")
            #expect(e1?.offset == e2?.offset && e1?.key == e2?.key && e1?.key == Array("list1".utf8), "\(name)")
            #expect(a.events == b.events && a.events.count > 20 * 26, "\(name)")
            // Salvage does the same: drops the key and goes on to the next, or stops with the same error.
            func salvage(ahead: Bool) -> (String, [String], Int) {
                var s = AbortCounter()
                do {
                    _ = try RDBReader.decode(bytes: bytes, into: &s, options: Self.options(ahead: ahead, salvage: true))
                    return ("", s.aborted.map { "\($0.key) \($0.range) \($0.code)" }, s.ended)
                } catch { return ("\(error)", s.aborted.map { "\($0.key) \($0.range) \($0.code)" }, s.ended) }
            }
            let s1 = salvage(ahead: false)
            #expect(s1 == salvage(ahead: true), "\(name)")
            #expect(s1.0 == "" ? s1.1.count == 1 && s1.2 == 3 : s1.2 == 2, "\(name): \(s1)")
        }
    }

    /// Loads `commands` into a fresh server, saves, and decodes the dump with and without the
    /// read-ahead (which must agree). Returns the events and the server, for checks against it.
    static func serverDump(_ kind: RedisServer.Kind, _ commands: [[String]]) throws -> ([String], RedisServer) {
        let server = try RedisServer(kind: kind)
        let bytes: [UInt8]
        do {
            #expect(try server.pipe(commands.flatMap(resp)).errors == 0)
            bytes = try server.save()
        } catch {
            server.stop()
            throw error
        }
        let plain = try record(bytes, options: options(ahead: false))
        let ahead = try record(bytes, options: options(ahead: true))
        #expect(plain == ahead)
        return (ahead, server)
    }

    /// The events of one key with `prefix`, the prefix dropped.
    static func events(_ events: [String], key: String, _ prefix: String) -> [String] {
        var out: [String] = []
        var inKey = false
        for e in events {
            if e.hasPrefix("key ") { inKey = e.hasPrefix("key \(key) ") } else if inKey, e.hasPrefix(prefix) {
                out.append(String(e.dropFirst(prefix.count)))
            }
        }
        return out
    }

    @Test("Long streams written by real servers", arguments: [RedisServer.Kind.redis70, .valkey81, .redis62])
    func serverStreams(kind: RedisServer.Kind) throws {
        var commands: [[String]] = []
        for s in 0..<3 {
            for n in 1...3000 {
                let fields = n % 4 == 0 ? ["other", "x\(n)"] : ["temp", String(n % 97), "where", "sensor-\(s)-" + String(repeating: "abc", count: n % 13)]
                commands.append(["XADD", "stream\(s)", "\(1000 + n / 3)-\(n % 3)"] + fields)
            }
            commands.append(["XDEL", "stream\(s)", "1010-1", "1500-0"])
            commands.append(["XGROUP", "CREATE", "stream\(s)", "g", "0"])
            commands.append(["XREADGROUP", "GROUP", "g", "c1", "COUNT", "5", "STREAMS", "stream\(s)", ">"])
        }
        let (events, server) = try Self.serverDump(kind, commands)
        defer { server.stop() }
        // Every live entry the server has, in order.
        #expect(events.filter { $0.hasPrefix("entry ") }.count == 3 * 2998)
        let ids = try server.cli(["XRANGE", "stream1", "-", "+"]).split(separator: "\n").filter { $0.contains("-") && !$0.contains("sensor") }
        #expect(ids.count == 2998)
        #expect(Self.events(events, key: "stream1", "entry ").map { String($0.prefix { $0 != " " }) } == ids.map(String.init))
    }

    @Test("Long lists written by real servers (quicklist of listpacks and of ziplists)", arguments: [RedisServer.Kind.redis70, .redis62])
    func serverLists(kind: RedisServer.Kind) throws {
        var commands: [[String]] = []
        for l in 0..<3 {
            for chunk in 0..<40 {
                commands.append(["RPUSH", "list\(l)"] + (0..<250).map { i in
                    let n = chunk * 250 + i
                    return n % 5 == 0 ? String(n * (l + 1)) : "value-\(l)-\(n)-" + String(repeating: "abc", count: n % 17)
                })
            }
        }
        let (events, server) = try Self.serverDump(kind, commands)
        defer { server.stop() }
        // The elements are the server's, in order.
        let listed = try server.cli(["LRANGE", "list1", "0", "-1"]).split(separator: "\n").map(String.init)
        #expect(listed.count == 10_000)
        #expect(Self.events(events, key: "list1", "list ").map { String($0.drop(while: { $0 == "#" })) } == listed)
    }
}
