import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
@testable import RedisWire

/// Discovery and slot routing against real 3-master + 3-replica clusters of each server.
@Suite("Real clusters", .serialized)
struct ClusterServerTests {
    /// A topology as comparable text: per shard its slots, master and replicas (ids and addresses).
    static func layout(_ t: ClusterTopology) -> [String] {
        t.shards.map { s in
            "\(ClusterReplies.describe(s.slots)) \(s.master.id)@\(s.master.address) replicas "
                + s.replicas.map { "\($0.id)@\($0.address)" }.joined(separator: ",")
        }
    }

    @Test(arguments: TestServer.Kind.allCases)
    func discoveryAndRouting(_ kind: TestServer.Kind) throws {
        let cluster = try TestCluster(kind)
        defer { cluster.stop() }
        print("cluster \(kind): 3+3 nodes ready in \(String(format: "%.2f", cluster.startupSeconds)) s")

        // CLUSTER SHARDS exists from 7.0 on; 6.2 takes the CLUSTER SLOTS path.
        #expect(try cluster.nodes[0].command("CLUSTER", "SHARDS").isError == (kind == .redis62))

        // discover from every node gives the map CLUSTER NODES gives.
        let reference = try ClusterTopology(shards: ClusterReplies.nodes(cluster.clusterNodes(from: cluster.nodes[0]),
                                                                        connectionHost: "127.0.0.1"))
        #expect(reference.shards.count == 3 && reference.shards.allSatisfy { $0.replicas.count == 1 })
        #expect(reference.uncoveredSlots.isEmpty)
        for node in cluster.nodes {
            let t = try #require(try ClusterDiscovery.discover(from: node.endpoint), "node \(node.port) is a cluster node")
            #expect(Self.layout(t) == Self.layout(reference), "discovered from \(node.port)")
        }
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[3].endpoint))

        // HashSlot agrees with CLUSTER KEYSLOT.
        let probe = try cluster.nodes[0].client()
        defer { probe.close() }
        var mismatches: [String] = []
        for key in ClusterKeys.sample(3000) {
            let r = try probe.send(bytes: [Array("CLUSTER".utf8), Array("KEYSLOT".utf8), key])
            if r != .integer(Int64(HashSlot.of(bytes: key))) { mismatches.append("\(key): server \(r), ours \(HashSlot.of(bytes: key))") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")

        // A SET through the master HashSlot picks is accepted; through another master it gets MOVED to that one.
        let clients = try topology.masters.map { try RedisClient($0.address.endpoint(like: cluster.nodes[0].endpoint)) }
        defer { for c in clients { c.close() } }
        var moved = 0
        let keys = ClusterKeys.sample(400)
        #expect(Set(keys).count == keys.count)
        for (i, key) in keys.enumerated() {
            let slot = HashSlot.of(bytes: key)
            let owner = try #require(topology.shardIndex(slot: slot))
            let set = [Array("SET".utf8), key, Array("v\(i)".utf8)]
            #expect(try clients[owner].send(bytes: set) == .simple("OK"), "key \(key) slot \(slot)")
            let wrong = (owner + 1 + i % 2) % clients.count
            let reply = try clients[wrong].send(bytes: set)
            let parts = reply.errorMessage?.split(separator: " ") ?? []
            #expect(parts.count == 3 && parts[0] == "MOVED", "\(reply)")
            if parts.count == 3 {
                #expect(Int(parts[1]) == slot)
                #expect(parts[2] == "\(topology.shards[owner].master.address)")
                moved += 1
            }
        }
        #expect(moved == 400)
        // Every key landed on its owner.
        let dbsize = try clients.map { c -> Int64 in
            guard case .integer(let n) = try c.send(["DBSIZE"]) else { return -1 }
            return n
        }
        #expect(dbsize.reduce(0, +) == 400)

        // Slots nobody serves make discovery fail, naming them (on 7.0+ after SHARDS was checked against SLOTS).
        for node in cluster.nodes {
            let c = try node.client()
            defer { c.close() }
            let r = try c.send(["CLUSTER", "DELSLOTS"] + (100...200).map(String.init))
            #expect(r == .simple("OK"), "DELSLOTS on \(node.port): \(r)")
        }
        let source = kind == .redis62 ? "CLUSTER SLOTS" : "CLUSTER SHARDS"
        let error = #expect(throws: ClusterError.self) { try ClusterDiscovery.discover(from: cluster.nodes[1].endpoint) }
        #expect(error?.description == "\(source) on 127.0.0.1:\(cluster.nodes[1].port): 101 of 16384 slots have no master (uncovered: 100-200)")
    }

    /// A killed master's replica takes over; discovery then names it, a write to another master gets a
    /// MOVED to it, and the router follows the MOVED.
    @Test(arguments: TestServer.Kind.allCases)
    func failoverIsDiscovered(_ kind: TestServer.Kind) throws {
        let cluster = try TestCluster(kind)
        defer { cluster.stop() }
        let before = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        let victim = before.shards[0]
        let index = try #require(cluster.nodes.firstIndex { $0.port == victim.master.address.port })
        let seconds = try cluster.killAndAwaitFailover(index)
        print("cluster \(kind): replica took over a killed master in \(String(format: "%.2f", seconds)) s")
        let survivor = cluster.nodes[(index + 1) % cluster.nodes.count]
        let after = try #require(try ClusterDiscovery.discover(from: survivor.endpoint))
        let shard = try #require(after.shardIndex(slot: victim.slots[0].lowerBound))
        #expect(after.shards[shard].master.id == victim.replicas.first?.id)
        #expect(after.shards[shard].slots == victim.slots)
        #expect(after.masters.count == 3)
        // The old master still shows, failed, where the reply lists it (not in CLUSTER SLOTS).
        #expect(after.shards[shard].replicas.allSatisfy { $0.id == victim.master.id && $0.health == .failed },
                "\(after.shards[shard].replicas.map { "\($0) \($0.health)" }), old master \(victim.master)")

        var router = SlotRouter(before)
        let key = "{failover}k"
        let slot = HashSlot.of(key)
        let other = try #require(after.masters.first { after.shardIndex(slot: slot).map { after.shards[$0].master } != $0 })
        let c = try RedisClient(other.address.endpoint(like: survivor.endpoint))
        defer { c.close() }
        let reply = try c.send(["SET", key, "v"])
        let parts = reply.errorMessage?.split(separator: " ") ?? []
        try #require(parts.count == 3 && parts[0] == "MOVED", "\(reply)")
        let colon = try #require(parts[2].lastIndex(of: ":"))
        let target = NodeAddress(announced: String(parts[2][..<colon]), port: Int(parts[2][parts[2].index(after: colon)...]) ?? 0,
                                 connectionHost: "127.0.0.1")
        #expect(Int(parts[1]) == slot)
        #expect(target == after.master(slot: slot)?.address)
        router.moved(slot: slot, to: target)
        #expect(router.master(slot: slot) == after.master(slot: slot)?.address)
        let owner = try RedisClient(target.endpoint(like: survivor.endpoint))
        defer { owner.close() }
        #expect(try owner.send(["SET", key, "v"]) == .simple("OK"))
    }

    @Test func standaloneServerIsNotACluster() throws {
        let server = try TestServer(.redis70)
        defer { server.stop() }
        #expect(try ClusterDiscovery.discover(from: server.endpoint) == nil)
    }
}
