import Testing
@testable import RDBImport
@testable import RedisWire

/// Hand-made replies (as `RESPReply` values) for the topology readers.
@Suite("Cluster topology parsing")
struct ClusterTopologyTests {
    static func b(_ s: String) -> RESPReply { .bulk(Array(s.utf8)) }
    static func id(_ c: Character) -> String { String(repeating: c, count: 40) }

    /// A `CLUSTER SHARDS` node map.
    static func node(_ idChar: Character, port: Int, endpoint: String = "127.0.0.1", role: String, health: String = "online",
                     tlsPort: Int? = nil) -> RESPReply {
        var kv: [RESPReply] = [b("id"), b(id(idChar)), b("port"), .integer(Int64(port))]
        if let tlsPort { kv += [b("tls-port"), .integer(Int64(tlsPort))] }
        kv += [b("ip"), b("10.0.0.9"), b("endpoint"), b(endpoint), b("role"), b(role),
               b("replication-offset"), .integer(42), b("health"), b(health)]
        return .array(kv)
    }

    static func shard(_ slots: [Int], _ nodes: [RESPReply]) -> RESPReply {
        .array([b("slots"), .array(slots.map { .integer(Int64($0)) }), b("nodes"), .array(nodes)])
    }

    @Test func shardsReply() throws {
        let reply = RESPReply.array([
            Self.shard([10923, 16383], [Self.node("c", port: 7002, role: "master"),
                                        Self.node("f", port: 7005, role: "replica", health: "failed")]),
            Self.shard([0, 5460], [Self.node("a", port: 7000, endpoint: "", role: "master"),
                                   Self.node("d", port: 7003, endpoint: "?", role: "replica")]),
            Self.shard([5461, 10000, 10001, 10922], [Self.node("b", port: 7001, endpoint: "node-b.example", role: "master")]),
            Self.shard([], [Self.node("e", port: 7004, role: "master")]),  // an empty master: no slots
        ])
        let t = try ClusterTopology(shards: ClusterReplies.shards(reply, connectionHost: "seed.example"))
        #expect(t.shards.count == 3)
        #expect(t.shards.map(\.slots) == [[0...5460], [5461...10922], [10923...16383]])
        #expect(t.master(slot: 0)?.address == NodeAddress(host: "seed.example", port: 7000))  // empty endpoint
        #expect(t.shards[0].replicas.map(\.address) == [NodeAddress(host: "seed.example", port: 7003)])  // "?"
        #expect(t.master(slot: 10000)?.address == NodeAddress(host: "node-b.example", port: 7001))
        #expect(t.shards[1].replicas.isEmpty)
        #expect(t.shards[2].replicas.map(\.health) == [.failed])
        #expect(t.master(slot: 16383)?.id == Self.id("c") && t.master(slot: 16383)?.health == .online)
        #expect(t.uncoveredSlots.isEmpty)
        try t.requireFullCoverage(source: "test")
    }

    @Test func shardsAfterFailoverAndTLS() throws {
        // The old master, failed, is still listed with role master next to the promoted replica.
        let reply = RESPReply.array([
            Self.shard([0, 16383], [Self.node("a", port: 7000, role: "master", health: "fail", tlsPort: 8000),  // Valkey's word
                                    Self.node("d", port: 7003, role: "master", tlsPort: 8003)]),
        ])
        let t = try ClusterTopology(shards: ClusterReplies.shards(reply, connectionHost: "h", tls: true))
        #expect(t.master(slot: 5)?.id == Self.id("d"))
        #expect(t.master(slot: 5)?.address.port == 8003)
        #expect(t.shards[0].replicas.map(\.id) == [Self.id("a")] && t.shards[0].replicas[0].health == .failed)
    }

    @Test func slotsReply62And70() throws {
        func n(_ host: String, _ port: Int, _ c: Character, extra: Bool) -> RESPReply {
            .array([Self.b(host), .integer(Int64(port)), Self.b(Self.id(c))] + (extra ? [.array([])] : []))
        }
        for extra in [false, true] {
            let reply = RESPReply.array([
                .array([.integer(0), .integer(5460), n("127.0.0.1", 7000, "a", extra: extra), n("127.0.0.1", 7003, "d", extra: extra)]),
                .array([.integer(5461), .integer(8000), n("", 7001, "b", extra: extra)]),
                .array([.integer(10923), .integer(16383), n("127.0.0.1", 7002, "c", extra: extra), n("127.0.0.1", 7005, "f", extra: extra),
                        n("127.0.0.1", 7004, "e", extra: extra)]),
                .array([.integer(8001), .integer(10922), n("", 7001, "b", extra: extra)]),
            ])
            let t = try ClusterTopology(shards: ClusterReplies.slots(reply, connectionHost: "seed"))
            #expect(t.shards.map(\.slots) == [[0...5460], [5461...10922], [10923...16383]], "extra field: \(extra)")
            #expect(t.master(slot: 9000)?.address == NodeAddress(host: "seed", port: 7001))
            #expect(t.shards[2].replicas.map(\.id) == [Self.id("e"), Self.id("f")])
        }
    }

    @Test func nodesText() throws {
        let a = Self.id("a"), b = Self.id("b"), c = Self.id("c"), d = Self.id("d"), e = Self.id("e")
        let text = """
        \(a) 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5460->-\(b)]
        \(b) 127.0.0.1:7001@17001,node-b master - 0 1700000000000 2 connected 5461-10921 10922
        \(c) :7002@17002 master - 0 1700000000000 3 connected 10923-16383 [100-<-\(a)]
        \(d) 127.0.0.1:7003@17003 slave \(a) 0 1700000000000 1 connected
        \(e) 127.0.0.1:7004@17004 slave,fail \(b) 0 1700000000000 2 disconnected
        \(Self.id("f")) :0@0 master,noaddr - 0 0 0 disconnected

        """
        let t = try ClusterTopology(shards: ClusterReplies.nodes(text, connectionHost: "seed"))
        #expect(t.shards.map(\.slots) == [[0...5460], [5461...10922], [10923...16383]])
        #expect(t.master(slot: 12000)?.address == NodeAddress(host: "seed", port: 7002))
        #expect(t.shards[0].replicas.map(\.id) == [d])
        #expect(t.shards[1].replicas.map(\.health) == [.failed])
        #expect(t.shards[2].replicas.isEmpty)
    }

    @Test func uncoveredSlotsAreNamed() throws {
        let reply = RESPReply.array([
            Self.shard([0, 99, 201, 15999], [Self.node("a", port: 7000, role: "master")]),
        ])
        let t = try ClusterTopology(shards: ClusterReplies.shards(reply, connectionHost: "h"))
        #expect(t.uncoveredSlots == [100...200, 16000...16383])
        #expect(t.master(slot: 150) == nil && t.master(slot: 99) != nil)
        let error = #expect(throws: ClusterError.self) { try t.requireFullCoverage(source: "CLUSTER SHARDS on h:1") }
        #expect(error?.description == "CLUSTER SHARDS on h:1: 485 of 16384 slots have no master (uncovered: 100-200,16000-16383)")
    }

    @Test func badRepliesAreErrors() throws {
        let bad: [RESPReply] = [
            .integer(3),
            .array([.array([Self.b("slots")])]),  // odd map
            .array([Self.shard([0], [Self.node("a", port: 1, role: "master")])]),  // odd bounds
            .array([Self.shard([5, 16384], [Self.node("a", port: 1, role: "master")])]),  // out of range
            .array([Self.shard([9, 3], [Self.node("a", port: 1, role: "master")])]),  // reversed
            .array([Self.shard([0, 10], [Self.node("a", port: 1, role: "replica")])]),  // no master
            .array([Self.shard([0, 10], [.array([Self.b("id"), Self.b("x")])])]),  // no port
        ]
        for r in bad {
            #expect(throws: ClusterError.self, "\(r)") { try ClusterReplies.shards(r, connectionHost: "h") }
        }
        #expect(throws: ClusterError.self) { try ClusterReplies.slots(.array([.array([.integer(0), .integer(1)])]), connectionHost: "h") }
        #expect(throws: ClusterError.self) {
            try ClusterReplies.slots(.array([.array([.integer(0), .integer(1), .array([Self.b("h")])])]), connectionHost: "h")
        }
        #expect(throws: ClusterError.self) { try ClusterReplies.nodes("abc 1.2.3.4 master", connectionHost: "h") }
        #expect(throws: ClusterError.self) {
            try ClusterReplies.nodes("\(Self.id("a")) 1.2.3.4:x@1 master - 0 0 1 connected 0-5", connectionHost: "h")
        }
        // Two shards claiming one slot.
        let overlap = RESPReply.array([
            Self.shard([0, 100], [Self.node("a", port: 1, role: "master")]),
            Self.shard([100, 200], [Self.node("b", port: 2, role: "master")]),
        ])
        let e = #expect(throws: ClusterError.self) { try ClusterTopology(shards: ClusterReplies.shards(overlap, connectionHost: "h")) }
        #expect(e?.description.contains("slot 100 is claimed by both") == true)
    }

    @Test func detection() {
        #expect(ClusterDiscovery.isClusterEnabled(info: "# Cluster\r\ncluster_enabled:1\r\n"))
        #expect(!ClusterDiscovery.isClusterEnabled(info: "# Cluster\r\ncluster_enabled:0\r\n"))
        #expect(ClusterDiscovery.isUnknownCommand("ERR Unknown subcommand or wrong number of arguments for 'SHARDS'. Try CLUSTER HELP."))
        #expect(ClusterDiscovery.isUnknownCommand("ERR unknown command 'CLUSTER', with args beginning with: 'SHARDS' "))
        #expect(!ClusterDiscovery.isUnknownCommand("NOPERM this user has no permissions to run the 'cluster|shards' command"))
    }

    @Test func router() throws {
        let reply = RESPReply.array([
            Self.shard([0, 8191], [Self.node("a", port: 7000, role: "master")]),
            Self.shard([8192, 16383], [Self.node("b", port: 7001, role: "master")]),
        ])
        let t = try ClusterTopology(shards: ClusterReplies.shards(reply, connectionHost: "h"))
        var r = SlotRouter(t)
        let a = NodeAddress(host: "127.0.0.1", port: 7000), b = NodeAddress(host: "127.0.0.1", port: 7001)
        let foo = HashSlot.of("foo")  // 12182
        #expect(Array("foo".utf8).withUnsafeBytes { r.master(key: $0) } == b)
        #expect(r.master(slot: 0) == a && r.masterIndex(slot: 16383) == 1)
        let first = r.moved(slot: foo, to: a)
        let again = r.moved(slot: foo, to: a)  // already there
        #expect(first && !again)
        #expect(r.master(slot: foo) == a && r.master(slot: foo + 1) == b && r.movedCount == 1)
        let c = NodeAddress(announced: "", port: 7002, connectionHost: "127.0.0.1")
        let toNew = r.moved(slot: 0, to: c)
        #expect(toNew)
        #expect(r.masters == [a, b, c] && r.masterIndex(slot: 0) == 2)
        // A fresh topology replaces the corrections; known masters keep their index.
        let fresh = try ClusterTopology(shards: ClusterReplies.shards(.array([
            Self.shard([0, 99], [Self.node("c", port: 7002, role: "master")]),
            Self.shard([100, 16383], [Self.node("b", port: 7001, role: "master")]),
        ]), connectionHost: "h"))
        r.update(fresh)
        #expect(r.masters == [a, b, c])
        #expect(r.master(slot: 50) == c && r.master(slot: foo) == b && r.master(slot: 200) == b)
    }
}
