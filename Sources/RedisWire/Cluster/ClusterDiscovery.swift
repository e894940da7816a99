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
    /// `replyTimeoutSeconds`: how long to wait for each answer (a node that accepts connections and stopped
    /// answering is given up on after it).
    public static func discover(from seed: RedisEndpoint, timeoutSeconds: Int64 = 10, replyTimeoutSeconds: Int64 = 120) throws -> ClusterTopology? {
        let client = try self.client(for: seed, timeoutSeconds: timeoutSeconds, replyTimeoutSeconds: replyTimeoutSeconds)
        defer { client.close() }
        return try discover(using: client)
    }

    /// The connection `discover(from:)` asks on: to the seed, without selecting its database.
    public static func client(for seed: RedisEndpoint, timeoutSeconds: Int64 = 10, replyTimeoutSeconds: Int64 = 120) throws -> RedisClient {
        var plain = seed
        plain.database = nil
        return try RedisClient(plain, timeoutSeconds: timeoutSeconds, replyTimeoutSeconds: replyTimeoutSeconds)
    }

    /// `discover(from:)` on an open connection.
    ///
    /// A `CLUSTER SHARDS` answer that does not make a whole map (a slot claimed twice or unserved) is
    /// checked against `CLUSTER SLOTS` before giving up: SHARDS had bugs before 7.2.6 (redis/redis#13422)
    /// that SLOTS did not. The error then names what SHARDS said.
    public static func discover(using client: RedisClient) throws -> ClusterTopology? {
        let node = client.endpoint.address
        let info = try client.send(["INFO", "cluster"])
        if let e = info.errorMessage { throw ClusterError("INFO cluster on \(node) failed: \(e)") }
        guard isClusterEnabled(info: info.text ?? "") else { return nil }
        let host = client.endpoint.host
        let reply = try client.send(["CLUSTER", "SHARDS"])
        guard let e = reply.errorMessage else {
            do {
                return try topology(ClusterReplies.shards(reply, connectionHost: host, tls: client.endpoint.tls != nil),
                                    source: "CLUSTER SHARDS on \(node)")
            } catch let shardsError as ClusterError {
                guard let t = try? slots(client) else { throw shardsError }
                return t
            }
        }
        guard isUnknownCommand(e) else { throw ClusterError("CLUSTER SHARDS on \(node) failed: \(e)") }
        return try slots(client)
    }

    static func slots(_ client: RedisClient) throws -> ClusterTopology {
        let node = client.endpoint.address
        let reply = try client.send(["CLUSTER", "SLOTS"])
        if let e = reply.errorMessage { throw ClusterError("CLUSTER SLOTS on \(node) failed: \(e)") }
        return try topology(ClusterReplies.slots(reply, connectionHost: client.endpoint.host), source: "CLUSTER SLOTS on \(node)")
    }

    /// The topology of `shards`, with every slot served; errors start with `source`.
    static func topology(_ shards: @autoclosure () throws -> [ClusterShard], source: String) throws -> ClusterTopology {
        do {
            let t = try ClusterTopology(shards: shards())
            try t.requireFullCoverage(source: source)
            return t
        } catch let e as ClusterError where !e.description.hasPrefix(source) {
            throw ClusterError("\(source): \(e)")
        }
    }

    /// An error reply that means the server does not know the (sub)command: `ERR unknown command …`
    /// (also through a proxy) or `ERR Unknown subcommand or wrong number of arguments for 'SHARDS'` (6.2).
    static func isUnknownCommand(_ message: String) -> Bool {
        let m = message.lowercased()
        return m.contains("unknown subcommand") || m.contains("unknown command")
    }
}
