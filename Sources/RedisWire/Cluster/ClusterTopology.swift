/// Where a cluster node listens, as the cluster announces it.
public struct NodeAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The address a server announced (an endpoint in `CLUSTER SHARDS`/`SLOTS`, or the target of a
    /// `MOVED`/`ASK`): an empty host (`cluster-preferred-endpoint-type unknown-endpoint`) or `?` (type
    /// `hostname` with no hostname set) means the host of the connection the answer came on.
    public init(announced host: String, port: Int, connectionHost: String) {
        self.host = host.isEmpty || host == "?" ? connectionHost : host
        self.port = port
    }

    /// `host:port` (`[v6]:port`).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func < (a: NodeAddress, b: NodeAddress) -> Bool { (a.host, a.port) < (b.host, b.port) }

    /// An endpoint for this node with the seed's credentials and TLS settings (and no database: a
    /// cluster has only database 0).
    public func endpoint(like seed: RedisEndpoint) -> RedisEndpoint {
        var e = seed
        e.host = host
        e.port = port
        e.database = nil
        return e
    }
}

/// One node of a cluster.
public struct ClusterNode: Sendable, Hashable, CustomStringConvertible {
    public enum Health: String, Sendable, Hashable {
        case online, failed, loading
        /// The reply does not say (`CLUSTER SLOTS` lists only nodes that are not failed).
        case unknown

        /// The `health` of a `CLUSTER SHARDS` node: `online`, `loading` (also a replica that has not
        /// replicated anything yet), `failed` (Redis) or `fail` (Valkey 8.1).
        public init(reply: String) {
            switch reply {
            case "online": self = .online
            case "failed", "fail": self = .failed
            case "loading": self = .loading
            default: self = .unknown
            }
        }
    }

    /// The 40-character node id.
    public var id: String
    public var address: NodeAddress
    public var health: Health

    public init(id: String, address: NodeAddress, health: Health = .unknown) {
        self.id = id
        self.address = address
        self.health = health
    }

    public var description: String { "\(address) (\(id.prefix(8)))" }
}

/// A master, its replicas and the slots it serves.
public struct ClusterShard: Sendable, Hashable {
    public var master: ClusterNode
    /// Sorted by node id.
    public var replicas: [ClusterNode]
    /// Sorted, merged, non-overlapping slot ranges.
    public var slots: [ClosedRange<Int>]

    public init(master: ClusterNode, replicas: [ClusterNode], slots: [ClosedRange<Int>]) {
        self.master = master
        self.replicas = replicas.sorted { $0.id < $1.id }
        self.slots = ClusterShard.merged(slots)
    }

    /// Sorts ranges and joins the ones that touch or overlap.
    static func merged(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}

/// A problem with a cluster's topology or with finding it.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The slot map of a cluster: which shard (master and replicas) serves each of the 16384 slots.
///
/// Built from `CLUSTER SHARDS`, `CLUSTER SLOTS` or `CLUSTER NODES` (see `ClusterReplies`), or found with
/// `ClusterDiscovery.discover(from:)`. Masters without slots are not shards; they are kept in
/// `slotlessMasters` (what goes to every master, functions, goes to them too). Looking up a slot is one
/// array read.
public struct ClusterTopology: Sendable, Equatable {
    /// Sorted by their first slot.
    public let shards: [ClusterShard]
    /// Masters that serve no slot (new nodes before a reshard), not failed; `CLUSTER SLOTS` (6.2) does not
    /// list them.
    public let slotlessMasters: [ClusterNode]
    /// Slot → index in `shards`; `unowned` where no shard serves the slot.
    @usableFromInline let owner: [UInt16]
    @usableFromInline static let unowned = UInt16.max

    /// Fails when two shards claim the same slot (naming both masters and the slot).
    public init(shards: [ClusterShard]) throws {
        let sorted = shards.filter { !$0.slots.isEmpty }.sorted { $0.slots[0].lowerBound < $1.slots[0].lowerBound }
        var owner = [UInt16](repeating: Self.unowned, count: HashSlot.count)
        for (i, shard) in sorted.enumerated() {
            for range in shard.slots {
                guard range.lowerBound >= 0, range.upperBound < HashSlot.count else {
                    throw ClusterError("\(shard.master) claims slots \(range.lowerBound)-\(range.upperBound), outside 0-16383")
                }
                for slot in range {
                    if owner[slot] != Self.unowned {
                        throw ClusterError("slot \(slot) is claimed by both \(sorted[Int(owner[slot])].master) and \(shard.master)")
                    }
                    owner[slot] = UInt16(i)
                }
            }
        }
        self.shards = sorted
        self.owner = owner
        slotlessMasters = shards.filter { $0.slots.isEmpty && $0.master.health != .failed }.map(\.master)
    }

    /// The index in `shards` of the shard serving `slot`, nil when no shard does.
    @inlinable
    public func shardIndex(slot: Int) -> Int? {
        let o = owner[slot]
        return o == Self.unowned ? nil : Int(o)
    }

    /// The master serving `slot`.
    public func master(slot: Int) -> ClusterNode? { shardIndex(slot: slot).map { shards[$0].master } }

    /// Every master that serves slots.
    public var masters: [ClusterNode] { shards.map(\.master) }

    /// The slot ranges no shard serves.
    public var uncoveredSlots: [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        var start: Int?
        for slot in 0..<HashSlot.count {
            if owner[slot] == Self.unowned {
                if start == nil { start = slot }
            } else if let s = start {
                out.append(s...slot - 1)
                start = nil
            }
        }
        if let s = start { out.append(s...HashSlot.count - 1) }
        return out
    }

    /// Fails unless every slot has a master, naming the uncovered ranges.
    public func requireFullCoverage(source: String) throws {
        let gaps = uncoveredSlots
        guard !gaps.isEmpty else { return }
        let count = gaps.reduce(0) { $0 + $1.count }
        let list = ClusterReplies.describe(Array(gaps.prefix(10))) + (gaps.count > 10 ? ",…" : "")
        throw ClusterError("\(source): \(count) of 16384 slots have no master (uncovered: \(list))")
    }
}
