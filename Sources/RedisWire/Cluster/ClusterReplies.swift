/// Reads the three replies that describe a cluster's layout into shards.
///
/// `connectionHost` is the host of the connection the reply came on: it stands in for an empty or `?`
/// announced endpoint. `tls` picks a node's `tls-port` over its `port` where `CLUSTER SHARDS` gives both.
public enum ClusterReplies {
    /// `CLUSTER SHARDS` (Redis 7.0+, Valkey): `[slots [s e …] nodes [[id … port … ip … endpoint … role …
    /// health …] …]] …`; maps arrive as flat key/value arrays (RESP2) or as maps (RESP3), which read the
    /// same. A shard's master is its node with role `master` (an online one if there are several).
    public static func shards(_ reply: RESPReply, connectionHost: String, tls: Bool = false) throws -> [ClusterShard] {
        guard case .array(let items?) = reply else { throw ClusterError("CLUSTER SHARDS answered \(reply)") }
        var out: [ClusterShard] = []
        for (n, item) in items.enumerated() {
            let fields = try map(item, what: "CLUSTER SHARDS entry \(n)")
            guard case .array(let bounds?) = fields["slots"] ?? .array(nil), bounds.count % 2 == 0 else {
                throw ClusterError("CLUSTER SHARDS entry \(n) has no even list of slot bounds")
            }
            var slots: [ClosedRange<Int>] = []
            for i in stride(from: 0, to: bounds.count, by: 2) {
                slots.append(try slotRange(bounds[i], bounds[i + 1], what: "CLUSTER SHARDS entry \(n)"))
            }
            guard case .array(let nodeItems?) = fields["nodes"] ?? .array(nil) else {
                throw ClusterError("CLUSTER SHARDS entry \(n) has no node list")
            }
            var masters: [ClusterNode] = []
            var replicas: [ClusterNode] = []
            for nodeItem in nodeItems {
                let f = try map(nodeItem, what: "a node of CLUSTER SHARDS entry \(n)")
                guard let id = f["id"]?.text else { throw ClusterError("a node of CLUSTER SHARDS entry \(n) has no id") }
                let port = tls ? (f["tls-port"].flatMap(integer) ?? f["port"].flatMap(integer)) : f["port"].flatMap(integer)
                guard let port else { throw ClusterError("node \(id) in CLUSTER SHARDS has no port") }
                let host = f["endpoint"]?.text ?? f["ip"]?.text ?? ""
                let health = ClusterNode.Health(reply: f["health"]?.text ?? "")
                let node = ClusterNode(id: id, address: NodeAddress(announced: host, port: port, connectionHost: connectionHost),
                                       health: health)
                if f["role"]?.text == "master" { masters.append(node) } else { replicas.append(node) }
            }
            if slots.isEmpty && masters.isEmpty { continue }
            // After a failover the old master can still be listed as a failed master of the shard.
            masters.sort { ($0.health == .failed ? 1 : 0, $0.id) < ($1.health == .failed ? 1 : 0, $1.id) }
            guard let master = masters.first else {
                throw ClusterError("CLUSTER SHARDS entry \(n) (slots \(describe(slots))) has no master")
            }
            out.append(ClusterShard(master: master, replicas: replicas + masters.dropFirst(), slots: slots))
        }
        return out
    }

    /// `CLUSTER SLOTS`: `[start end master replica…] …`, a node being `[ip port id]` (6.2) or
    /// `[ip port id {extra}]` (7.0+). A master serving several ranges appears once per range.
    public static func slots(_ reply: RESPReply, connectionHost: String) throws -> [ClusterShard] {
        guard case .array(let items?) = reply else { throw ClusterError("CLUSTER SLOTS answered \(reply)") }
        var byMaster: [String: ClusterShard] = [:]
        var order: [String] = []
        for (n, item) in items.enumerated() {
            guard case .array(let e?) = item, e.count >= 3 else { throw ClusterError("CLUSTER SLOTS entry \(n) is \(item)") }
            let range = try slotRange(e[0], e[1], what: "CLUSTER SLOTS entry \(n)")
            let nodes = try e[2...].map { try slotsNode($0, connectionHost: connectionHost, entry: n) }
            let master = nodes[0]
            if var shard = byMaster[master.id] {
                shard.slots = ClusterShard.merged(shard.slots + [range])
                byMaster[master.id] = shard
            } else {
                byMaster[master.id] = ClusterShard(master: master, replicas: Array(nodes.dropFirst()), slots: [range])
                order.append(master.id)
            }
        }
        return order.map { byMaster[$0]! }
    }

    /// `CLUSTER NODES` text: `id ip:port@bus[,hostname] flags master-id ping pong epoch link slot…`.
    /// Migration markers (`[slot->-id]`, `[slot-<-id]`) are skipped; nodes flagged `noaddr` or `handshake`
    /// are left out.
    public static func nodes(_ text: String, connectionHost: String) throws -> [ClusterShard] {
        var masters: [(node: ClusterNode, slots: [ClosedRange<Int>])] = []
        var replicasOf: [String: [ClusterNode]] = [:]
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: " ")
            guard f.count >= 8 else { throw ClusterError("CLUSTER NODES line \(n + 1) has \(f.count) fields: \(line)") }
            let flags = f[2].split(separator: ",")
            if flags.contains("noaddr") || flags.contains("handshake") { continue }
            let hostPort = f[1].split(separator: ",", maxSplits: 1)[0].split(separator: "@", maxSplits: 1)[0]
            guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
                throw ClusterError("CLUSTER NODES line \(n + 1) has a bad address \(f[1])")
            }
            let health: ClusterNode.Health = flags.contains("fail") ? .failed : .online
            let node = ClusterNode(id: String(f[0]), address: NodeAddress(announced: String(hostPort[..<colon]), port: port,
                                                                          connectionHost: connectionHost), health: health)
            if flags.contains("master") {
                var slots: [ClosedRange<Int>] = []
                for s in f.dropFirst(8) where !s.hasPrefix("[") {
                    let bounds = s.split(separator: "-", maxSplits: 1).map { Int($0) }
                    guard let lo = bounds.first ?? nil, let hi = bounds.last ?? nil, lo <= hi else {
                        throw ClusterError("CLUSTER NODES line \(n + 1) has a bad slot range \(s)")
                    }
                    slots.append(lo...hi)
                }
                masters.append((node, slots))
            } else if f[3] != "-" {
                replicasOf[String(f[3]), default: []].append(node)
            }
        }
        return masters.map { ClusterShard(master: $0.node, replicas: replicasOf[$0.node.id] ?? [], slots: $0.slots) }
    }

    // MARK: pieces

    static func slotsNode(_ reply: RESPReply, connectionHost: String, entry: Int) throws -> ClusterNode {
        guard case .array(let f?) = reply, f.count >= 3, let host = f[0].text, let port = integer(f[1]), let id = f[2].text else {
            throw ClusterError("CLUSTER SLOTS entry \(entry) has a bad node \(reply)")
        }
        return ClusterNode(id: id, address: NodeAddress(announced: host, port: port, connectionHost: connectionHost))
    }

    static func slotRange(_ a: RESPReply, _ b: RESPReply, what: String) throws -> ClosedRange<Int> {
        guard let lo = integer(a), let hi = integer(b), 0 <= lo, lo <= hi, hi < HashSlot.count else {
            throw ClusterError("\(what) has a bad slot range \(a)-\(b)")
        }
        return lo...hi
    }

    /// A flat `[key, value, key, value…]` array as a dictionary.
    static func map(_ reply: RESPReply, what: String) throws -> [String: RESPReply] {
        guard case .array(let kv?) = reply, kv.count % 2 == 0 else { throw ClusterError("\(what) is not a map: \(reply)") }
        var out: [String: RESPReply] = [:]
        for i in stride(from: 0, to: kv.count, by: 2) {
            guard let k = kv[i].text else { throw ClusterError("\(what) has a key that is not a string: \(kv[i])") }
            out[k] = kv[i + 1]
        }
        return out
    }

    static func integer(_ r: RESPReply) -> Int? {
        switch r {
        case .integer(let v): return Int(v)
        case .bulk, .simple: return r.text.flatMap { Int($0) }
        default: return nil
        }
    }

    static func describe(_ slots: [ClosedRange<Int>]) -> String {
        slots.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}
