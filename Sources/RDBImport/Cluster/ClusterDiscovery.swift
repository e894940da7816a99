/// Finds out whether a server is a cluster node and, if so, the cluster's slot map.
public enum ClusterDiscovery {
    /// Whether an `INFO cluster` (or full `INFO`) text says `cluster_enabled:1`.
    public static func isClusterEnabled(info: String) -> Bool {
        info.split(whereSeparator: \.isNewline).contains { $0 == "cluster_enabled:1" }
    }

    /// Asks the node at `seed` (any node of the cluster): nil when it is not cluster-enabled, else the
    /// topology from `CLUSTER SHARDS`, or `CLUSTER SLOTS` on servers without it (Redis 6.2). Fails when
    /// some slot has no master, naming the uncovered ranges. Node endpoints carry the seed's credentials and
    /// TLS settings (`NodeAddress.endpoint(like:)`).
    public static func discover(from seed: RedisEndpoint, timeoutSeconds: Int64 = 10) throws -> ClusterTopology? {
        var plain = seed
        plain.database = nil
        let client = try RedisClient(plain, timeoutSeconds: timeoutSeconds)
        defer { client.close() }
        return try discover(using: client)
    }

    /// `discover(from:)` on an open connection.
    public static func discover(using client: RedisClient) throws -> ClusterTopology? {
        let node = client.endpoint.address
        let info = try client.send(["INFO", "cluster"])
        if let e = info.errorMessage { throw ClusterError("INFO cluster on \(node) failed: \(e)") }
        guard isClusterEnabled(info: info.text ?? "") else { return nil }
        let host = client.endpoint.host
        var shards: [ClusterShard]
        var source = "CLUSTER SHARDS"
        let reply = try client.send(["CLUSTER", "SHARDS"])
        if let e = reply.errorMessage {
            guard isUnknownCommand(e) else { throw ClusterError("CLUSTER SHARDS on \(node) failed: \(e)") }
            source = "CLUSTER SLOTS"
            let slots = try client.send(["CLUSTER", "SLOTS"])
            if let e = slots.errorMessage { throw ClusterError("CLUSTER SLOTS on \(node) failed: \(e)") }
            shards = try ClusterReplies.slots(slots, connectionHost: host)
        } else {
            shards = try ClusterReplies.shards(reply, connectionHost: host, tls: client.endpoint.tls != nil)
        }
        do {
            let topology = try ClusterTopology(shards: shards)
            try topology.requireFullCoverage(source: "\(source) on \(node)")
            return topology
        } catch let e as ClusterError where !e.description.hasPrefix(source) {
            throw ClusterError("\(source) on \(node): \(e)")
        }
    }

    /// An error reply that means the server does not know the (sub)command: `ERR unknown command …`
    /// (also through a proxy) or `ERR Unknown subcommand or wrong number of arguments for 'SHARDS'` (6.2).
    static func isUnknownCommand(_ message: String) -> Bool {
        let m = message.lowercased()
        return m.contains("unknown subcommand") || m.contains("unknown command")
    }
}
