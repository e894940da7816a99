import RDBTestSupport
import Foundation
import NIOCore
import RDBImport
import RDBReplication
import RedisWire
import Testing

/// A sync into a 3-master cluster: the snapshot and the stream routed by slot (MULTI blocks whose keys
/// share a slot go to its master as a unit).
@Suite("Sync into a cluster", .serialized)
struct SyncClusterTests {
    /// Writes cluster-friendly commands: a hash tag per group, so a MULTI block stays in one slot.
    static func write(_ s: TestServer, rounds: Int) throws {
        let c = try s.client()
        defer { c.close() }
        for i in 0..<rounds {
            let t = "{g\(i % 40)}"
            try c.send(["SET", "\(t):s", "v\(i)", "EX", "100000"])
            try c.send(["RPUSH", "\(t):l", "a\(i)"])
            try c.send(["HSET", "\(t):h", "f\(i % 5)", "\(i)"])
            try c.send(["XADD", "\(t):x", "*", "i", "\(i)"])
            if i % 6 == 0 { try c.send(["DEL", "\(t):h"]) }
            if i % 4 == 0 {
                var b = ByteBuffer()
                b.writeCommand(["MULTI"])
                b.writeCommand(["INCR", "\(t):n"])
                b.writeCommand(["SADD", "\(t):set", "\(i)"])
                b.writeCommand(["EXEC"])
                _ = try c.send(b, replies: 4)
            }
            usleep(1_000)
        }
    }

    @Test("Redis 7.0 source into a 3-master cluster: every key's DIGEST-VALUE matches on its master")
    func intoCluster() throws {
        let source = try TestServer(.redis70, arguments: SyncFixtures.sourceArguments(diskless: true))
        defer { source.stop() }
        try source.command("DEBUG", "POPULATE", "3000", "pop", "20")
        try Self.write(source, rounds: 50)
        let cluster = try TestCluster(.redis70, masters: 3, replicasPerMaster: 0)
        defer { cluster.stop() }
        let sync = RunningSync(source: source.endpoint, target: cluster.nodes[0].endpoint)
        try Self.write(source, rounds: 200)
        try sync.waitCaughtUp(source)
        let r = try sync.stop()
        #expect(r.status == .success, Comment(rawValue: "\(r.failure ?? "-") \(r.imports.flatMap(\.problems).prefix(5).map(\.message))"))
        let keys = try ClusterImportTests.keys(source.client())
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        let clients = try topology.masters.map { try RedisClient($0.address.endpoint(like: cluster.nodes[0].endpoint)) }
        defer { for c in clients { c.close() } }
        let src = try source.client()
        defer { src.close() }
        var bad: [String] = []
        for key in keys {
            let owner = try #require(topology.shardIndex(slot: HashSlot.of(bytes: key)))
            let want = try src.send(bytes: [Array("DEBUG".utf8), Array("DIGEST-VALUE".utf8), key])
            let got = try clients[owner].send(bytes: [Array("DEBUG".utf8), Array("DIGEST-VALUE".utf8), key])
            if want != got { bad.append(String(decoding: key, as: UTF8.self)) }
        }
        var total: Int64 = 0
        for c in clients { if case .integer(let n) = try c.send(["DBSIZE"]) { total += n } }
        #expect(bad.isEmpty, "keys differ: \(bad.prefix(10))")
        #expect(total == Int64(keys.count))
    }
}
