#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import RDBKit
import RedisWire

/// The routing of a cluster import: a pipeline per master, each a lane of the `BatchBuilder`, keys sent
/// to the master of their slot, and the records a node answers with `MOVED` or `ASK` sent again where it
/// says. Lives on the decoding thread; redirected records come from the pipelines' event loops through a
/// locked queue and are resent by `drain()` between records.
///
/// - `MOVED slot host:port` updates the slot map (`SlotRouter`) and resends the record whole to the new
///   owner (with the `DEL` a resent record starts with when it was written unguarded or under a temporary
///   name). A master not seen before gets its own pipeline.
/// - `ASK slot host:port` resends the record to that node, each command after an `ASKING`, and leaves the
///   map as it is.
/// - A record redirected more than `maxHops` times is reported failed.
///
/// `TRYAGAIN`, `CLUSTERDOWN` and `LOADING` are transient for the pipelines (reconnect after a pause and
/// resend, until the reconnect deadline).
///
/// Nothing is lost when a master fails: on a master with replicas a `WAIT 1` follows every few MB of
/// records (`BatchBuilder.confirmBytes`), and records count as delivered only once it is answered (a
/// replica has them). Before every reconnect a pipeline asks the cluster (`ClusterResolver`) which node
/// now serves its slots; after a failover that is the promoted replica, and the records since the last
/// confirmed `WAIT` are sent to it again.
final class ClusterRouting {
    let seed: RedisEndpoint
    let options: PipelineOptions
    let problems: ProblemLog
    let temporaryPrefix: [UInt8]
    static let maxHops: UInt8 = 5

    private(set) var router: SlotRouter
    /// The builder lane of each of `router.masters` (-1: none yet).
    private var laneOfMaster: [Int] = []
    /// Per lane: its node, its pipeline, and the redirects its node answered.
    private(set) var addresses: [NodeAddress] = []
    private(set) var pipelines: [ImportPipeline] = []
    private(set) var servers: [ServerInfo] = []
    private(set) var redirectsFrom: [Int] = []
    private(set) var movedFollowed = 0
    private(set) var askFollowed = 0
    private let queue = NIOLockedValueBox<[(record: RedirectedRecord, from: Int)]>([])
    let resolver: ClusterResolver
    let topology: ClusterTopology
    /// Failovers followed (a pipeline moved to the node that took over its slots).
    private(set) var failovers = 0
    private var draining = false
    /// Records a node answered `TRYAGAIN`, to send again to it when due (after a pause that doubles).
    private var delayed: [(due: Double, record: RedirectedRecord, from: Int)] = []
    private(set) var tryAgainFollowed = 0
    /// Set by `attach`.
    private(set) weak var builder: BatchBuilder?

    init(seed: RedisEndpoint, topology: ClusterTopology, options: PipelineOptions, problems: ProblemLog, temporaryPrefix: [UInt8]) {
        self.seed = seed
        self.options = options
        self.problems = problems
        self.temporaryPrefix = temporaryPrefix
        router = SlotRouter(topology)
        laneOfMaster = Array(repeating: -1, count: router.masters.count)
        self.topology = topology
        resolver = ClusterResolver(seed: seed, topology: topology, timeoutSeconds: options.connectTimeoutSeconds)
    }

    /// Connects to every master (all of them: functions go to each), in shard order. Throws (naming the
    /// node) when one cannot be reached or refuses the login.
    /// `stop` ends a wait for a master that accepts the connection and does not answer its handshake (the
    /// import then ends STOPPED, nothing sent).
    func connect(stop: StopRequest) throws {
        for shard in topology.shards {
            _ = try openPipeline(shard.master.address, slot: shard.slots.first?.lowerBound ?? 0,
                                 confirming: ClusterResolver.hasReplica(shard), stop: stop)
        }
        // Masters without slots get no key, but functions (and keyless AOF commands) go to every master.
        for m in topology.slotlessMasters where !addresses.contains(m.address) {
            _ = try openPipeline(m.address, slot: -1, confirming: false, stop: stop)
        }
    }

    /// Makes the builder's lanes the pipelines: lane i is pipeline i (lane 0 was made with pipeline 0).
    func attach(_ b: BatchBuilder) {
        builder = b
        b.cluster = self
        for i in pipelines.indices.dropFirst() { _ = b.addLane(pipelines[i]) }
        for i in pipelines.indices { b.lanes[i].confirm = pipelines[i].confirming }
        for (m, address) in router.masters.enumerated() { laneOfMaster[m] = addresses.firstIndex(of: address) ?? -1 }
    }

    /// Opens the pipeline of a master; `stop`: see `connect(stop:)` (nil for a master met during the import,
    /// which a stop then lets finish between keys).
    private func openPipeline(_ address: NodeAddress, slot: Int, confirming: Bool, stop: StopRequest? = nil) throws -> Int {
        let endpoint = address.endpoint(like: seed)
        let p: ImportPipeline
        let info: ServerInfo
        do {
            p = try ImportPipeline(endpoint: endpoint, options: options, problems: problems, temporaryPrefix: temporaryPrefix)
            let lane = pipelines.count
            let q = queue
            p.onRedirect = { records in q.withLockedValue { $0.append(contentsOf: records.map { ($0, lane) }) } }
            p.confirming = confirming
            if slot >= 0 {  // (a master without slots has no slot to follow)
                let r = resolver
                p.resolveTarget = { current in r.resolve(lane: lane, slot: slot, current: current) }
            }
            if let stop {
                info = try stop.whileBlocking(interrupt: { p.abortStart(Importer.stoppedWhileConnecting) }) { try p.start() }
            } else {
                info = try p.start()
            }
        } catch {
            throw ClusterError("cluster node \(address): \(seed.password?.redact("\(error)") ?? "\(error)")")
        }
        pipelines.append(p)
        servers.append(info)
        addresses.append(address)
        redirectsFrom.append(0)
        return pipelines.count - 1
    }

    /// The lane of the node at `address`, opening a pipeline (and a lane) for a node not seen before.
    /// (A node first met in a redirect: its `slot`; its records are not confirmed with `WAIT`.)
    private func lane(of address: NodeAddress, slot: Int = 0) throws -> Int {
        if let i = addresses.firstIndex(of: address) { return i }
        let i = try openPipeline(address, slot: slot, confirming: false)
        if let b = builder, b.addLane(pipelines[i]) != i { preconditionFailure("ClusterRouting: lanes out of step") }
        return i
    }

    /// Makes the builder's current lane the master of `slot`. Throws when no master serves the slot or a
    /// new master cannot be reached.
    @inline(__always)
    func route(slot: Int) throws {
        builder!.use(lane: try lane(slot: slot))
    }

    /// The lane of the master of `slot`.
    @inline(__always)
    func lane(slot: Int) throws -> Int {
        guard let m = router.masterIndex(slot: slot) else { throw ClusterError("no master serves slot \(slot)") }
        if m < laneOfMaster.count, laneOfMaster[m] >= 0 { return laneOfMaster[m] }
        while laneOfMaster.count < router.masters.count { laneOfMaster.append(-1) }
        let l = try lane(of: router.masters[m], slot: slot)
        laneOfMaster[m] = l
        return l
    }

    /// Whether redirected records wait to be resent.
    var hasRedirects: Bool { queue.withLockedValue { !$0.isEmpty } }

    /// Resends the records redirected since the last call (between records only), and hands them over.
    func drain() {
        guard let b = builder, !draining, !b.recordOpen else { return }
        for (lane, address, confirming) in resolver.takeRetargets() where lane < addresses.count {
            addresses[lane] = address
            b.lanes[lane].confirm = confirming
            failovers += 1
        }
        let items = queue.withLockedValue { q -> [(record: RedirectedRecord, from: Int)] in
            defer { q.removeAll() }
            return q
        }
        let now = monotonicSeconds()
        guard !items.isEmpty || delayed.contains(where: { $0.due <= now }) else { return }
        draining = true
        defer { draining = false }
        let current = b.lane
        for item in items {
            if item.record.redirect == nil { later(item.record, from: item.from, now: now) } else { resend(item.record, from: item.from, b) }
        }
        let due = delayed.filter { $0.due <= now }
        delayed.removeAll { $0.due <= now }
        for d in due { resend(d.record, from: d.from, b) }
        b.flushAll()
        b.use(lane: current)
    }

    /// A `TRYAGAIN`: the record goes to the same node again after a pause, until `reconnectTimeout` has
    /// passed since the first one (then it is reported failed).
    private func later(_ item: RedirectedRecord, from: Int, now: Double) {
        var item = item
        tryAgainFollowed += 1
        if item.record.tryAgainSince == 0 { item.record.tryAgainSince = now }
        let waited = now - item.record.tryAgainSince
        if waited > options.reconnectTimeout {
            builder?.stats[item.record.file].keysFailed += item.record.kind == .key ? 1 : 0
            problems.add(.error, file: item.record.file, db: item.record.db, key: item.name,
                         message: "not written: its slot answered TRYAGAIN (being migrated) for \(Int(waited)) s", offset: item.record.offset)
            return
        }
        delayed.append((now + min(0.05 * max(1, waited * 2), 1.0), item, from))
    }

    private func resend(_ item: RedirectedRecord, from: Int, _ b: BatchBuilder) {
        var r = item.record
        guard let to = item.redirect else { return sendAgain(item, to: from, b) }
        redirectsFrom[from] += 1
        r.hops &+= 1
        let address = NodeAddress(announced: to.host, port: to.port, connectionHost: addresses[from].host)
        func fail(_ why: String) {
            b.stats[r.file].keysFailed += r.kind == .key ? 1 : 0
            problems.add(.error, file: r.file, db: r.db, key: item.name, message: why, offset: r.offset)
        }
        if r.hops > Self.maxHops {
            return fail("not written: more than \(Self.maxHops) cluster redirects (the last: \(to))")
        }
        if to.isAsk && r.kind == .aofBlock {
            return fail("not written: a MULTI block in a slot being migrated (\(to)); a block cannot follow ASK")
        }
        let lane: Int
        do {
            if to.isAsk {
                askFollowed += 1
            } else {
                movedFollowed += 1
                router.moved(slot: to.slot, to: address)
                while laneOfMaster.count < router.masters.count { laneOfMaster.append(-1) }
            }
            lane = try self.lane(of: address, slot: to.slot)
            if !to.isAsk, let m = router.masters.firstIndex(of: address) { laneOfMaster[m] = lane }
        } catch {
            return fail("not written: redirected (\(to)) to a node that cannot be reached: \(error)")
        }
        b.use(lane: lane)
        b.begin(db: r.db, file: r.file)
        let step = to.isAsk ? 2 : 1
        var prefixCommands = 0
        if r.temporary || r.deleteOnResend {
            if to.isAsk { Commands.asking(&b.batch.buffer) }
            item.name.withUnsafeBytes { key in
                let prefix = r.temporary ? TemporaryName.prefix(temporaryPrefix, key: key, tagged: true) : []
                Commands.del(&b.batch.buffer, key, prefix: prefix)
            }
            prefixCommands = 1
        }
        var commands = prefixCommands
        if to.isAsk {
            commands += Commands.interleaveAsking(item.bytes, into: &b.batch.buffer)
        } else {
            var bytes = item.bytes
            b.batch.buffer.writeBuffer(&bytes)
            commands += r.commands
        }
        b.recordCommands += commands * step
        let exists = r.existsReply >= 0 ? (prefixCommands + r.existsReply) * step + (step - 1) : -1
        item.name.withUnsafeBytes {
            b.end(kind: r.kind, name: $0, file: r.file, offset: r.offset, existsReply: exists, temporary: r.temporary,
                  deleteOnResend: r.deleteOnResend, hops: r.hops, tryAgainSince: r.tryAgainSince, inputEnd: r.inputEnd)
        }
        if r.kind == .key { b.keysSent -= 1 }  // counted when it was first sent
    }

    /// A record answered `TRYAGAIN`, as it was (its `ASKING`s too), to the node that answered. Only a
    /// command of several keys gets `TRYAGAIN`: the `RENAMENX` of a key built under a temporary name, whose
    /// record ends with `DEL tmp` whatever the rename answered, so nothing of the attempt is left to delete.
    private func sendAgain(_ item: RedirectedRecord, to lane: Int, _ b: BatchBuilder) {
        let r = item.record
        b.use(lane: lane)
        b.begin(db: r.db, file: r.file)
        var bytes = item.bytes
        b.batch.buffer.writeBuffer(&bytes)
        b.recordCommands += r.commands
        item.name.withUnsafeBytes {
            b.end(kind: r.kind, name: $0, file: r.file, offset: r.offset, existsReply: r.existsReply,
                  temporary: r.temporary, deleteOnResend: r.deleteOnResend, hops: r.hops, tryAgainSince: r.tryAgainSince, inputEnd: r.inputEnd)
        }
        if r.kind == .key { b.keysSent -= 1 }
    }

    /// Waits until every pipeline has its replies (or stopped), resending redirected records meanwhile.
    func settle() {
        guard let b = builder else { return }
        // The last records of each master with replicas are confirmed too.
        let current = b.lane
        for i in b.lanes.indices where b.lanes[i].confirm && b.lanes[i].sinceWait > 0 {
            b.use(lane: i)
            b.appendWait()
        }
        b.use(lane: current)
        while true {
            drain()
            b.flushAll()
            // A pipeline queues a redirected record before its window lets it go: once every window is
            // settled, a redirect not in the queue now will not come.
            if delayed.isEmpty && pipelines.allSatisfy({ $0.window.isSettled }) && !hasRedirects { return }
            usleep(1000)
        }
    }

    /// Per master: its node, and what went there.
    func shardReports(_ b: BatchBuilder) -> [ShardReport] {
        pipelines.indices.map { i in
            let counters = pipelines[i].counters
            return ShardReport(
                node: addresses[i].description, keysImported: counters.reduce(0) { $0 + $1.imported },
                keysFailed: counters.reduce(0) { $0 + $1.failed }, commandsSent: b.lanes[i].commands, bytesSent: b.lanes[i].bytes,
                redirects: redirectsFrom[i], reconnects: pipelines[i].reconnects)
        }
    }
}

/// What one master of a cluster got in an import.
public struct ShardReport: Sendable, Hashable {
    /// `host:port` of the master.
    public var node: String
    public var keysImported: Int
    public var keysFailed: Int
    public var commandsSent: Int
    public var bytesSent: Int
    /// `MOVED`/`ASK` answers this node gave (each record resent where it said).
    public var redirects: Int
    /// Reconnects (a lost connection, or a pause after `TRYAGAIN`/`CLUSTERDOWN`/`LOADING`).
    public var reconnects: Int
}

/// Finds the node that serves a pipeline's slots now, for a reconnect (called off the event loop): asks
/// the nodes of the cluster it knows in turn, the failed one last. Records each change for the router.
final class ClusterResolver: @unchecked Sendable {
    let seed: RedisEndpoint
    let timeoutSeconds: Int64
    private let state: NIOLockedValueBox<(nodes: [NodeAddress], retargets: [(Int, NodeAddress, Bool)])>

    init(seed: RedisEndpoint, topology: ClusterTopology, timeoutSeconds: Int64) {
        self.seed = seed
        self.timeoutSeconds = min(timeoutSeconds, 2)
        var nodes = [NodeAddress(host: seed.host, port: seed.port)]
        for s in topology.shards {
            for n in [s.master] + s.replicas where !nodes.contains(n.address) { nodes.append(n.address) }
        }
        state = NIOLockedValueBox((nodes, []))
    }

    /// Whether a shard has a replica that is not failed (records there wait for a `WAIT`).
    static func hasReplica(_ shard: ClusterShard) -> Bool { shard.replicas.contains { $0.health != .failed } }

    /// The master of `slot` if it is no longer `current`, and whether it has a replica; nil when it is still
    /// `current` or no node answers.
    func resolve(lane: Int, slot: Int, current: RedisEndpoint) -> (endpoint: RedisEndpoint, confirming: Bool)? {
        let here = NodeAddress(host: current.host, port: current.port)
        let nodes = state.withLockedValue { $0.nodes }
        for node in nodes.filter({ $0 != here }) + [here] {
            // A node that stopped answering is passed over after a few seconds: the lookup runs while a pipeline
            // reconnects, where its own deadlines are not looked at.
            guard let t = try? ClusterDiscovery.discover(from: node.endpoint(like: seed), timeoutSeconds: timeoutSeconds,
                                                         replyTimeoutSeconds: 3 * timeoutSeconds),
                let i = t.shardIndex(slot: slot)
            else { continue }
            let shard = t.shards[i]
            state.withLockedValue { s in
                for n in [shard.master] + shard.replicas where !s.nodes.contains(n.address) { s.nodes.append(n.address) }
            }
            guard shard.master.address != here else { return nil }
            let confirming = Self.hasReplica(shard)
            state.withLockedValue { $0.retargets.append((lane, shard.master.address, confirming)) }
            return (shard.master.address.endpoint(like: seed), confirming)
        }
        return nil
    }

    /// The changes since the last call: (lane, its new node, whether it has a replica).
    func takeRetargets() -> [(Int, NodeAddress, Bool)] {
        state.withLockedValue { s in
            defer { s.retargets.removeAll() }
            return s.retargets
        }
    }
}
