import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
@testable import RedisWire

/// Imports into real 3-master + 3-replica clusters: every key's `DEBUG DIGEST-VALUE` on the master that
/// owns its slot equals the one on a server that loaded the file itself, and the key counts add up.
@Suite("Import into real clusters", .serialized)
struct ClusterImportTests {
    /// A server that loaded `file` itself (the reference), and its keys of database 0.
    final class Source {
        let server: TestServer
        let keys: [[UInt8]]
        let client: RedisClient

        init(_ kind: TestServer.Kind, file: String) throws {
            server = try TestServer(kind, dumpFile: file)
            keys = try ClusterImportTests.keys(server.client())
            client = try server.client()
        }

        deinit { client.close() }

        func digest(_ key: [UInt8]) throws -> RESPReply {
            try client.send(bytes: [Array("DEBUG".utf8), Array("DIGEST-VALUE".utf8), key])
        }
    }

    /// Every key of database 0 (SCAN).
    static func keys(_ c: RedisClient) throws -> [[UInt8]] {
        defer { c.close() }
        var cursor = "0"
        var out: [[UInt8]] = []
        repeat {
            let r = try c.send(["SCAN", cursor, "COUNT", "1000"])
            guard case .array(let parts?) = r, parts.count == 2, case .bulk(let next?) = parts[0], case .array(let ks?) = parts[1] else {
                throw TestServer.Failure("SCAN answered \(r)")
            }
            cursor = String(decoding: next, as: UTF8.self)
            for k in ks { if case .bulk(let b?) = k { out.append(b) } }
        } while cursor != "0"
        return out
    }

    /// Compares every key of `source` with the master that owns it; returns the mismatches (and checks that
    /// the masters hold no other keys).
    static func compare(_ source: Source, _ cluster: TestCluster, _ what: String, via: RedisEndpoint? = nil) throws -> [String] {
        let seed = via ?? cluster.nodes[0].endpoint
        let topology = try #require(try ClusterDiscovery.discover(from: seed))
        let clients = try topology.masters.map { try RedisClient($0.address.endpoint(like: seed)) }
        defer { for c in clients { c.close() } }
        var bad: [String] = []
        for key in source.keys {
            let owner = try #require(topology.shardIndex(slot: HashSlot.of(bytes: key)))
            let want = try source.digest(key)
            let got = try clients[owner].send(bytes: [Array("DEBUG".utf8), Array("DIGEST-VALUE".utf8), key])
            if want != got { bad.append("\(what): key \(String(decoding: key, as: UTF8.self)): source \(want), cluster \(got)") }
        }
        var total: Int64 = 0
        for c in clients { if case .integer(let n) = try c.send(["DBSIZE"]) { total += n } }
        if total != Int64(source.keys.count) { bad.append("\(what): the masters hold \(total) keys, the source \(source.keys.count)") }
        return bad
    }

    /// The `DEBUG DIGEST` a single server holding the cluster's keys would give: with database 0 only and an
    /// odd number of non-empty masters, the XOR of the masters' digests (each is the XOR of its keys'
    /// digests and one term for database 0, which then remains once).
    static func digest(_ topology: ClusterTopology, via seed: RedisEndpoint) throws -> String {
        var x = [UInt8](repeating: 0, count: 20)
        var nonEmpty = 0
        for m in topology.masters {
            let c = try RedisClient(m.address.endpoint(like: seed))
            defer { c.close() }
            let r = try c.send(["DEBUG", "DIGEST"])
            let hex = r.text ?? ""
            guard hex.count == 40 else { throw TestServer.Failure("DEBUG DIGEST answered \(r)") }
            if hex != String(repeating: "0", count: 40) { nonEmpty += 1 }
            var i = hex.startIndex
            for k in 0..<20 {
                let j = hex.index(i, offsetBy: 2)
                x[k] ^= UInt8(hex[i..<j], radix: 16)!
                i = j
            }
        }
        guard nonEmpty % 2 == 1 else { throw TestServer.Failure("\(nonEmpty) non-empty masters: the XOR of their digests is not the data set's") }
        return x.map { String(format: "%02x", $0) }.joined()
    }

    /// Waits (up to 30 s) until `node` holds at least `count` keys: an import running elsewhere got that far.
    static func waitForKeys(on node: TestServer, atLeast count: Int64) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if case .integer(let n) = try node.command("DBSIZE"), n >= count { return }
            usleep(2000)
        }
    }

    static func flush(_ cluster: TestCluster) throws {
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        for m in topology.masters {
            let c = try RedisClient(m.address.endpoint(like: cluster.nodes[0].endpoint))
            _ = try c.send(["FLUSHALL"])
            if cluster.kind != .redis62 { _ = try c.send(["FUNCTION", "FLUSH"]) }
            c.close()
        }
    }

    static func run(_ files: [String], into cluster: TestCluster, node: Int = 0, _ configure: (inout ImportOptions) -> Void = { _ in }) -> ImportReport {
        var o = ImportOptions()
        o.pipeline.reconnectTimeout = 20
        configure(&o)
        return Importer(target: cluster.nodes[node].endpoint, options: o).run(files: files)
    }

    @Test("Server fixtures into a cluster, as commands and as RESTORE, with and without replace: every key right on its owner",
          arguments: TestServer.Kind.allCases)
    func fixtures(kind: TestServer.Kind) throws {
        let cluster = try TestCluster(kind)
        defer { cluster.stop() }
        var compared = 0
        for (file, _) in try TestServer.fixtures(kind) {
            let source = try Source(kind, file: file)
            defer { source.server.stop() }
            let other = try source.server.keyspace().keys.filter { $0 != 0 }
            if !other.isEmpty { continue }  // the multi-database case has its own test
            for mode in ImportOptions.Mode.allCases {
                for replace in [false, true] {
                    try Self.flush(cluster)
                    // Any node will do, a replica too: the import finds the masters.
                    let r = Self.run([file], into: cluster, node: compared % cluster.nodes.count) {
                        $0.mode = mode
                        $0.replace = replace
                    }
                    let what = "\(kind) \(URL(fileURLWithPath: file).lastPathComponent) \(mode) replace=\(replace)"
                    #expect(r.status == .success, "\(what): \(ServerImportTests.describe(r))")
                    #expect(r.shards.count == 3, "\(what): shards \(r.shards)")
                    #expect(r.shards.reduce(0) { $0 + $1.keysImported } == r.keysImported, "\(what)")
                    #expect(r.keysImported + r.files[0].keysEmpty + r.files[0].keysExpired == r.keysRead, "\(what)")
                    let bad = try Self.compare(source, cluster, what)
                    #expect(bad.count == 0, "\(bad.prefix(3))")
                    compared += 1
                }
            }
        }
        #expect(compared >= 16, "fixtures compared: \(compared)")
    }

    @Test("A file with keys in other databases is refused before anything is written; --db 0 merges them")
    func otherDatabases() throws {
        let kind = TestServer.Kind.redis70
        let file = kind.fixtureFolder + "/expiry-dbs.rdb"
        let cluster = try TestCluster(kind, replicasPerMaster: 0)
        defer { cluster.stop() }
        let source = try Source(kind, file: file)
        defer { source.server.stop() }
        let dbs = try source.server.keyspace().keys.filter { $0 != 0 }.sorted()
        try #require(!dbs.isEmpty, "expiry-dbs.rdb has keys outside database 0")
        let r = Self.run([file], into: cluster)
        #expect(r.status == .failed)
        let failure = r.failure ?? ""
        #expect(failure.contains("only database 0") && failure.contains(dbs.map(String.init).joined(separator: ", ")), "\(failure)")
        #expect(r.commandsSent == 0)
        var total: Int64 = 0
        for n in cluster.nodes { if case .integer(let k) = try n.command("DBSIZE") { total += k } }
        #expect(total == 0, "nothing written")

        let merged = Self.run([file], into: cluster) { $0.mergeInto = 0 }
        #expect(merged.status == .success, ServerImportTests.describe(merged))
        #expect(merged.keysImported > 0)
    }

    @Test("A stop while a master accepts the connection and does not answer (SIGSTOP): STOPPED at once, nothing written")
    func stopWhileAMasterDoesNotAnswer() throws {
        let cluster = try TestCluster(.redis70, replicasPerMaster: 0)
        defer { cluster.stop() }
        let source = try GeneratedDump(strings: 300, script: "return 1", arguments: [], keys: 300)
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        // A master other than the seed: the cluster check asks the seed, then each master's handshake waits.
        let frozen = try #require(cluster.nodes.first { n in n.port != cluster.nodes[0].port && topology.masters.contains { $0.address.port == n.port } })
        frozen.pause()
        defer { frozen.resume() }
        let stop = StopRequest()
        let importer = Importer(target: cluster.nodes[0].endpoint, options: ImportOptions(), stopRequest: stop)
        Thread.detachNewThread { usleep(500_000); stop.set() }
        let started = Date()
        let report = importer.run(files: [source.path])
        let seconds = Date().timeIntervalSince(started)
        frozen.resume()
        // Without the stop the handshake waits for the reply timeout (60 s) and the import ends FAILED.
        #expect(seconds < 10, "the stop took \(seconds) s")
        #expect(report.status == .stopped, "\(report.status): \(report.failure ?? "")")
        #expect(report.keysImported == 0)
        for n in cluster.nodes { #expect(try n.keyspace()[0] == nil) }
    }

    @Test("Slots migrating during the import: ASK and MOVED are followed, every key ends right")
    func migratingSlots() throws {
        let kind = TestServer.Kind.redis70
        let cluster = try TestCluster(kind, replicasPerMaster: 0)
        defer { cluster.stop() }
        let source = try GeneratedDump(strings: 3000, script: "return 1", arguments: [], keys: 3000)
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        let ids = try topology.masters.map { m in
            try #require(cluster.nodes.first { $0.port == m.address.port })
        }
        // Every slot of shard 0 that holds a key of the dump is MIGRATING to shard 1 (which is IMPORTING it):
        // a key not on shard 0 yet gets ASK. Then half of them are handed over to shard 1 before the import
        // (so shard 0 answers MOVED, the map is stale), and the rest after.
        let reference = try Source(kind, file: source.path)
        defer { reference.server.stop() }
        let keys = reference.keys
        let slots = Set(keys.map { HashSlot.of(bytes: $0) }).filter { topology.shardIndex(slot: $0) == 0 }.sorted()
        try #require(slots.count > 20)
        func nodeID(_ s: TestServer) throws -> String {
            guard case .bulk(let b?) = try s.command("CLUSTER", "MYID") else { throw TestServer.Failure("MYID") }
            return String(decoding: b, as: UTF8.self)
        }
        let (from, to) = (ids[0], ids[1])
        let (fromID, toID) = (try nodeID(from), try nodeID(to))
        for slot in slots {
            #expect(try to.command("CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromID) == .simple("OK"))
            #expect(try from.command("CLUSTER", "SETSLOT", String(slot), "MIGRATING", toID) == .simple("OK"))
        }
        let moved = slots.prefix(slots.count / 2)
        for slot in moved {
            for n in [to, from] { _ = try n.command("CLUSTER", "SETSLOT", String(slot), "NODE", toID) }
        }
        let r = Importer(target: cluster.nodes[2].endpoint, options: {
            var o = ImportOptions()
            o.pipeline.reconnectTimeout = 20
            return o
        }()).run(files: [source.path])
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(r.keysImported == 3000)
        let redirects = r.shards.reduce(0) { $0 + $1.redirects }
        #expect(redirects > 0, "\(r.shards)")
        print("migrating slots: \(r.shards.map { "\($0.node): \($0.keysImported) keys, \($0.redirects) redirects" })")
        // Finish the migration, then every key must be on its owner with the source's value.
        for slot in slots.dropFirst(moved.count) {
            for n in [to, from] + ids.dropFirst(2) { _ = try n.command("CLUSTER", "SETSLOT", String(slot), "NODE", toID) }
        }
        let bad = try Self.compare(reference, cluster, "migrating slots")
        #expect(bad.count == 0, "\(bad.prefix(3))")
    }

    @Test("rdbcat import into a cluster with a password, naming a replica: SUCCESS, per-master counts, every key right")
    func commandLine() throws {
        let kind = TestServer.Kind.valkey81
        let file = kind.fixtureFolder + "/hashes.rdb"
        let password = "s3cret-cluster"
        let cluster = try TestCluster(kind, password: password)
        defer { cluster.stop() }
        let source = try Source(kind, file: file)
        defer { source.server.stop() }
        let replica = try #require(cluster.nodes.last)
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [
            "import", file, "--to", "redis://127.0.0.1:\(replica.port)", "--password-env", "CLUSTER_PASSWORD", "--no-progress",
        ], environment: ["CLUSTER_PASSWORD": password])
        #expect(status == 0, "\(err)")
        #expect(err.contains("SUCCESS") && err.contains("cluster of 3 masters"), "\(err)")
        #expect(!out.contains(password) && !err.contains(password))
        let bad = try Self.compare(source, cluster, "rdbcat import")
        #expect(bad.count == 0, "\(bad.prefix(3))")
    }

    @Test("A master killed mid-import: its replica takes over, the records it had not confirmed are resent, every key right",
          arguments: [TestServer.Kind.redis70, .valkey81])
    func masterKilled(kind: TestServer.Kind) throws {
        let cluster = try TestCluster(kind)
        defer { cluster.stop() }
        let source = try GeneratedDump(kind: kind, strings: 100_000, collections: 40, elements: 2000)
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        let victim = try #require(cluster.nodes.firstIndex { $0.port == topology.shards[1].master.address.port })
        let seed = cluster.nodes[(victim + 1) % cluster.nodes.count].endpoint
        nonisolated(unsafe) var report: ImportReport?
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var o = ImportOptions()
            o.pipeline.reconnectTimeout = 30
            report = Importer(target: seed, options: o).run(files: [source.path])
            done.signal()
        }
        // Kill it once it holds some of the import (acknowledged, maybe not yet replicated).
        try Self.waitForKeys(on: cluster.nodes[victim], atLeast: 3000)
        let seconds = try cluster.killAndAwaitFailover(victim)
        print("\(kind): replica took over in \(String(format: "%.2f", seconds)) s")
        #expect(done.wait(timeout: .now() + 120) == .success, "the import did not end")
        let r = try #require(report)
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(r.keysImported == source.keys, "\(r.keysImported) of \(source.keys)")
        #expect(r.reconnects > 0, "the killed master's pipeline reconnected")
        print("\(kind) failover: \(r.shards.map { "\($0.node): \($0.keysImported) keys, \($0.reconnects) reconnects" }), warnings \(r.warnings)")
        let survivors = try #require(try ClusterDiscovery.discover(from: seed))
        #expect(!survivors.masters.contains { $0.address.port == cluster.nodes[victim].port })
        #expect(try Self.digest(survivors, via: seed) == source.digest)
    }

    @Test("redis-cli --cluster reshard moving slots (and their keys) while the import streams in: every key right",
          arguments: [TestServer.Kind.redis70, .valkey81])
    func reshardDuringImport(kind: TestServer.Kind) throws {
        let cluster = try TestCluster(kind, replicasPerMaster: 0)
        defer { cluster.stop() }
        let source = try GeneratedDump(kind: kind, strings: 100_000, collections: 40, elements: 2000)
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        func id(_ m: ClusterNode) -> String { m.id }
        nonisolated(unsafe) var report: ImportReport?
        let done = DispatchSemaphore(value: 0)
        for mode in ImportOptions.Mode.allCases {
            try Self.flush(cluster)
            Thread.detachNewThread {
                var o = ImportOptions()
                o.mode = mode
                o.pipeline.reconnectTimeout = 60
                report = Importer(target: cluster.nodes[2].endpoint, options: o).run(files: [source.path])
                done.signal()
            }
            // Once keys arrive, move 3000 slots from the first master to the second, and back, keys and all.
            try Self.waitForKeys(on: cluster.nodes[0], atLeast: 2000)
            let (from, to) = mode == .commands ? (topology.masters[0], topology.masters[1]) : (topology.masters[1], topology.masters[0])
            let (status, out, err) = try TestServer.run(cluster.kind.cliPath, [
                "--cluster", "reshard", "127.0.0.1:\(cluster.nodes[0].port)", "--cluster-from", id(from), "--cluster-to", id(to),
                "--cluster-slots", "3000", "--cluster-yes", "--cluster-pipeline", "100",
            ])
            #expect(status == 0, "reshard: \(out.suffix(500)) \(err.suffix(500))")
            #expect(done.wait(timeout: .now() + 120) == .success, "the import did not end")
            let r = try #require(report)
            #expect(r.status == .success, ServerImportTests.describe(r))
            #expect(r.keysImported == source.keys, "\(mode): \(r.keysImported) of \(source.keys)")
            print("\(kind) \(mode) reshard: \(r.shards.map { "\($0.node): \($0.keysImported) keys, \($0.redirects) redirects, \($0.reconnects) reconnects" })")
            let now = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
            #expect(try Self.digest(now, via: cluster.nodes[0].endpoint) == source.digest, "\(mode)")
        }
    }

    @Test("An AOF into a cluster: commands routed by their keys, MULTI blocks whole on their slot's master; a command whose keys span slots is reported, not sent")
    func aofIntoCluster() throws {
        let kind = TestServer.Kind.redis70
        let writer = try TestServer(kind, arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        defer { writer.stop() }
        let c = try writer.client()
        var commands: [[String]] = []
        for i in 0..<300 {
            commands.append(["SET", "s:\(i)", "v\(i)"])
            commands.append(["RPUSH", "l:\(i % 17)", "e\(i)"])
            commands.append(["HSET", "h:\(i % 11)", "f\(i)", "\(i)"])
            commands.append(["INCRBY", "n:\(i % 5)", "\(i)"])
            if i % 7 == 0 { commands.append(["DEL", "s:\(i / 2)"]) }
            if i % 13 == 0 { commands.append(["PEXPIREAT", "l:\(i % 17)", "4102444800000"]) }
            if i % 29 == 0 { commands.append(["MSET", "{t\(i)}a", "1", "{t\(i)}b", "2"]) }
        }
        for cmd in commands { _ = try c.send(cmd) }
        for i in 0..<5 {  // transactions on one slot each
            _ = try c.send(["MULTI"])
            _ = try c.send(["SET", "{m\(i)}x", "1"])
            _ = try c.send(["INCR", "{m\(i)}y"])
            _ = try c.send(["RPUSH", "{m\(i)}z", "a", "b"])
            _ = try c.send(["EXEC"])
        }
        _ = try c.send(["FLUSHDB"])  // keyless: to every master
        for cmd in commands { _ = try c.send(cmd) }
        let digest = try writer.digest()
        // Then one command a cluster cannot take (its keys are in different slots), and one more key.
        _ = try c.send(["MSET", "x:1", "1", "x:2", "2"])
        _ = try c.send(["SET", "after", "1"])
        c.close()
        let folder = writer.dir + "/appendonlydir"

        let cluster = try TestCluster(kind, replicasPerMaster: 0)
        defer { cluster.stop() }
        let r = Self.run([folder], into: cluster)
        #expect(r.status == .failed)
        let refused = r.problems.filter { $0.kind == .error }
        #expect(refused.count == 1 && refused.first?.keyText == "x:1" && refused.first?.message.contains("different cluster slots") == true,
                "\(refused.map { "\($0.keyText): \($0.message)" })")
        #expect(r.failure == nil)
        // Everything else arrived: without the refused MSET and the last SET the data is the writer's.
        let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
        let owner = try RedisClient(try #require(topology.master(slot: HashSlot.of("after"))).address.endpoint(like: cluster.nodes[0].endpoint))
        #expect(try owner.send(["GET", "after"]) == .bulk(Array("1".utf8)))
        _ = try owner.send(["DEL", "after"])
        owner.close()
        #expect(try Self.digest(topology, via: cluster.nodes[0].endpoint) == digest)
    }

    @Test("TRYAGAIN (a key's slot migrating, the key still on the old node): the key is sent again until the migration ends, or reported after the deadline")
    func tryAgainWhileMigrating() throws {
        let kind = TestServer.Kind.redis70
        let writer = try TestServer(kind)
        defer { writer.stop() }
        let key = "migrating:list"
        _ = try writer.command("RPUSH", key, "a", "b", "c")
        for i in 0..<200 { _ = try writer.command("SET", "plain:\(i)", "v\(i)") }
        let file = try writer.save()

        for finish in [true, false] {
            let cluster = try TestCluster(kind, replicasPerMaster: 0)
            defer { cluster.stop() }
            let topology = try #require(try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint))
            let slot = HashSlot.of(key)
            let a = try #require(cluster.nodes.first { $0.port == topology.master(slot: slot)!.address.port })
            let b = try #require(cluster.nodes.first { $0 !== a })
            func myID(_ n: TestServer) throws -> String { try n.command("CLUSTER", "MYID").text ?? "" }
            let (aID, bID) = (try myID(a), try myID(b))
            // The target holds the key already (the import must not overwrite it), and its slot is migrating.
            #expect(try a.command("RPUSH", key, "old") == .integer(1))
            #expect(try b.command("CLUSTER", "SETSLOT", String(slot), "IMPORTING", aID) == .simple("OK"))
            #expect(try a.command("CLUSTER", "SETSLOT", String(slot), "MIGRATING", bID) == .simple("OK"))
            if finish {
                // The migration ends 1.5 s into the import: the key moves, the slot goes to b.
                Thread.detachNewThread {
                    usleep(1_500_000)
                    _ = try? a.command("MIGRATE", "127.0.0.1", String(b.port), key, "0", "5000")
                    for n in [b, a] { _ = try? n.command("CLUSTER", "SETSLOT", String(slot), "NODE", bID) }
                }
            }
            let started = Date()
            let r = Self.run([file], into: cluster) {
                $0.mode = .commands  // the list is built under a temporary name and moved with RENAMENX
                $0.pipeline.reconnectTimeout = 4
            }
            let seconds = Date().timeIntervalSince(started)
            let problems = r.problems.map { "\($0.kind) \($0.keyText): \($0.message)" }
            #expect(r.keysImported == 200, "finish=\(finish): \(problems)")
            if finish {
                #expect(r.status == .success, ServerImportTests.describe(r))
                #expect(r.problems.count == 1 && r.problems[0].kind == .exists && r.problems[0].keyText == key, "\(problems)")
                #expect(seconds >= 1.4, "the key waited for the migration (\(seconds) s)")
                let owner = try #require(try ClusterDiscovery.discover(from: a.endpoint)?.master(slot: slot))
                #expect(owner.address.port == b.port)
                #expect(try b.command("LRANGE", key, "0", "-1") == .array([.bulk(Array("old".utf8))]))
            } else {
                #expect(r.status == .failed)
                #expect(r.problems.count == 1 && r.problems[0].keyText == key && r.problems[0].message.contains("TRYAGAIN"), "\(problems)")
                #expect(seconds < 15, "gave up after the deadline (\(seconds) s)")
            }
            // Nothing left behind under a temporary name.
            for n in cluster.nodes {
                if case .array(let ks?) = try n.command("KEYS", "*rdbcat:tmp:*") { #expect(ks.isEmpty, "\(ks)") }
            }
        }
    }

    @Test("Functions go to every master, one without slots too")
    func functionsToEveryMaster() throws {
        let kind = TestServer.Kind.valkey81
        let file = kind.fixtureFolder + "/mixed.rdb"
        let cluster = try TestCluster(kind, replicasPerMaster: 0)
        defer { cluster.stop() }
        let spare = try TestServer(kind, arguments: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"], clusterBus: true)
        defer { spare.stop() }
        #expect(try cluster.nodes[0].command("CLUSTER", "MEET", "127.0.0.1", String(spare.port)) == .simple("OK"))
        let deadline = Date().addingTimeInterval(20)
        var known = 0
        while Date() < deadline {
            known = (try ClusterDiscovery.discover(from: cluster.nodes[0].endpoint)?.slotlessMasters.count) ?? 0
            if known == 1 { break }
            usleep(50_000)
        }
        try #require(known == 1, "the spare master joined")
        let source = try TestServer(kind, dumpFile: file)
        defer { source.stop() }
        guard case .array(let libraries?) = try source.command("FUNCTION", "LIST") else { throw TestServer.Failure("FUNCTION LIST") }
        try #require(!libraries.isEmpty, "mixed.rdb holds functions")
        let r = Self.run([file], into: cluster) { $0.mergeInto = 0 }
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(r.shards.count == 4)
        for node in cluster.nodes + [spare] {
            guard case .array(let got?) = try node.command("FUNCTION", "LIST") else { continue }
            #expect(got.count == libraries.count, "FUNCTION LIST on \(node.port)")
        }
    }
}
