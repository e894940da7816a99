import RDBTestSupport
import Foundation
import RDBImport
@testable import RedisWire
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway cluster on loopback: `masters` masters with `replicasPerMaster` replicas each, one
/// `TestServer` per node (own folder, free port with a free bus port, no persistence), joined with the
/// server's own cli (`redis-cli --cluster create … --cluster-replicas N --cluster-yes`; `valkey-cli` for
/// Valkey, the 6.2 wheel's `redis-cli` for 6.2). `init` returns once every node reports
/// `cluster_state:ok`, knows every node, sees every replica attached, and every replica's link is up.
/// Every node is stopped by pid in `stop()` or when the cluster is released (also when `init` throws).
final class TestCluster: @unchecked Sendable {
    let kind: TestServer.Kind
    let nodes: [TestServer]
    let masters: Int
    let replicasPerMaster: Int
    /// Seconds from the first server's launch to a ready cluster.
    private(set) var startupSeconds = 0.0

    /// `nodeTimeoutMs` is `cluster-node-timeout`: small, so that a replica takes over a killed master soon.
    /// `password`: every node has it as `requirepass` and `masterauth`.
    init(_ kind: TestServer.Kind, masters: Int = 3, replicasPerMaster: Int = 1, nodeTimeoutMs: Int = 1000,
         readyTimeout: TimeInterval = 60, password: String? = nil) throws {
        let started = Date()
        self.kind = kind
        self.masters = masters
        self.replicasPerMaster = replicasPerMaster
        let settings = (password.map { ["--masterauth", $0] } ?? []) + ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", String(nodeTimeoutMs),
                        // 7.0+ sync replicas diskless by default and wait 5 s for more replicas first.
                        "--repl-diskless-sync-delay", "0"]
        nodes = try (0..<masters * (1 + replicasPerMaster)).map { _ in
            try TestServer(kind, arguments: settings, password: password, clusterBus: true)
        }
        let cli = kind.cliPath
        guard FileManager.default.isExecutableFile(atPath: cli) else {
            throw TestServer.Failure("\(kind) cli not found at \(cli): run `bash scripts/setup.sh`")
        }
        let create = (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" }
            + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"]
        let (status, out, err) = try TestServer.run(cli, create)
        guard status == 0 else {
            throw TestServer.Failure("\(cli) --cluster create failed (\(status)): \(out.suffix(1500)) \(err.suffix(500))")
        }
        try waitUntilReady(timeout: readyTimeout)
        startupSeconds = Date().timeIntervalSince(started)
    }

    deinit { stop() }

    /// Stops every node (by pid) and removes their folders.
    func stop() { for n in nodes { n.stop() } }

    var endpoints: [RedisEndpoint] { nodes.map(\.endpoint) }

    /// `CLUSTER NODES` as `node` sees it.
    func clusterNodes(from node: TestServer) throws -> String {
        let r = try node.command("CLUSTER", "NODES")
        guard let t = r.text, !r.isError else { throw TestServer.Failure("CLUSTER NODES on \(node.port) answered \(r)") }
        return t
    }

    /// Polls every node until the cluster is whole (see the type's comment), or fails naming what is
    /// still missing on which node.
    func waitUntilReady(timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var missing = ""
        while Date() < deadline {
            missing = ""
            for node in nodes {
                if let m = notReady(node) {
                    missing = "node 127.0.0.1:\(node.port): \(m)"
                    break
                }
            }
            if missing.isEmpty { return }
            usleep(50_000)
        }
        throw TestServer.Failure("\(kind) cluster not ready after \(Int(timeout)) s: \(missing)")
    }

    /// What `node` still lacks, nil when it is ready.
    private func notReady(_ node: TestServer) -> String? {
        guard let client = try? node.client() else { return "does not answer" }
        defer { client.close() }
        guard let info = (try? client.send(["CLUSTER", "INFO"]))?.text else { return "no CLUSTER INFO" }
        let total = masters * (1 + replicasPerMaster)
        for want in ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:\(total)"]
        where !Self.lines(info).contains(Substring(want)) {
            return "CLUSTER INFO lacks \(want)"
        }
        guard let table = (try? client.send(["CLUSTER", "NODES"]))?.text else { return "no CLUSTER NODES" }
        let rows = Self.lines(table).map { $0.split(separator: " ") }
        let attached = rows.filter { $0.count >= 8 && $0[2].contains("slave") && $0[3] != "-" }.count
        if attached != masters * replicasPerMaster { return "sees \(attached) of \(masters * replicasPerMaster) replicas attached" }
        if let odd = rows.first(where: { $0.count < 8 || $0[2].contains("fail") || $0[2].contains("handshake") || $0[7] != "connected" }) {
            return "CLUSTER NODES has \(odd.joined(separator: " "))"
        }
        guard let repl = (try? client.send(["INFO", "replication"]))?.text else { return "no INFO replication" }
        let lines = Self.lines(repl)
        if lines.contains(Substring("role:slave")) && !lines.contains(Substring("master_link_status:up")) { return "replica link not up" }
        return nil
    }

    /// SIGKILLs node `index` (a master, for a failover) and waits until every other node reports
    /// `cluster_state:ok` and a full slot map whose masters are all alive. Returns the seconds it took.
    @discardableResult
    func killAndAwaitFailover(_ index: Int, timeout: TimeInterval = 30) throws -> TimeInterval {
        let started = Date()
        let dead = nodes[index].port
        nodes[index].kill9()
        let deadline = started.addingTimeInterval(timeout)
        var missing = ""
        while Date() < deadline {
            missing = ""
            for (i, node) in nodes.enumerated() where i != index {
                do {
                    let info = try node.command("CLUSTER", "INFO").text ?? ""
                    guard Self.lines(info).contains(Substring("cluster_state:ok")) else { throw TestServer.Failure("state not ok") }
                    let t = try ClusterTopology(shards: ClusterReplies.nodes(clusterNodes(from: node), connectionHost: "127.0.0.1"))
                    try t.requireFullCoverage(source: "CLUSTER NODES")
                    if t.masters.contains(where: { $0.address.port == dead }) { throw TestServer.Failure("still routes to \(dead)") }
                } catch {
                    missing = "node 127.0.0.1:\(node.port): \(error)"
                    break
                }
            }
            if missing.isEmpty { return Date().timeIntervalSince(started) }
            usleep(50_000)
        }
        throw TestServer.Failure("\(kind) cluster: no failover of 127.0.0.1:\(dead) within \(Int(timeout)) s: \(missing)")
    }

    static func lines(_ text: String) -> [Substring] {
        text.split(whereSeparator: \.isNewline)
    }
}

extension TestServer.Kind {
    /// The cli that comes with the server (it has `--cluster` in all three versions).
    var cliPath: String {
        let dir = URL(fileURLWithPath: binaryPath).deletingLastPathComponent().path
        return dir + (self == .valkey81 ? "/valkey-cli" : "/redis-cli")
    }
}

/// Keys for slot checks: text, hash tags (also empty, unclosed, nested, several) and binary keys with
/// braces, NULs and invalid UTF-8. Deterministic.
enum ClusterKeys {
    /// `length` bytes derived from `seed` (an LCG; any byte value occurs).
    static func binary(_ seed: Int, length: Int) -> [UInt8] {
        var x = UInt32(truncatingIfNeeded: seed &* 2_654_435_761 &+ 12345)
        return (0..<length).map { _ in
            x = x &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: x >> 16)
        }
    }

    /// `count` distinct keys (fewer than 65536).
    static func sample(_ count: Int) -> [[UInt8]] {
        (0..<count).map { i -> [UInt8] in
            let n = Array(String(i).utf8)
            let bin = binary(i, length: i % 23)
            switch i % 8 {
            case 0: return Array("key:".utf8) + n
            case 1: return Array("{user\(i % 97)}.".utf8) + n
            case 2: return Array("a{}{b".utf8) + n + Array("}".utf8)
            case 3: return Array("{".utf8) + n
            case 4: return Array("x{{".utf8) + n + Array("}}".utf8)
            case 5: return i == 5 ? [] : bin + [UInt8(i & 0xFF), UInt8(i >> 8)]  // the empty key once
            case 6: return bin + [0x7B] + n + [0x7D] + bin
            default: return [0x7B] + bin + [0x7D, 0x00, 0xFF] + n
            }
        }
    }
}
