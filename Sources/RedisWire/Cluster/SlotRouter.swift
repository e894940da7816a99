/// Which master gets a key: the topology's slot map, corrected by the `MOVED` redirects seen since it was
/// read. A value type with no I/O; the importer owns one and asks for a fresh topology when it wants to.
public struct SlotRouter: Sendable {
    /// Every address routed to so far (the topology's masters first, in shard order).
    public private(set) var masters: [NodeAddress]
    /// Slot → index in `masters`; `unowned` for a slot without a master.
    private var owner: [UInt16]
    private static let unowned = UInt16.max
    /// How many `MOVED` redirects changed the map.
    public private(set) var movedCount = 0

    public init(_ topology: ClusterTopology) {
        masters = topology.masters.map(\.address)
        owner = (0..<HashSlot.count).map { topology.shardIndex(slot: $0).map(UInt16.init) ?? Self.unowned }
    }

    /// The master serving `slot`, nil when none does.
    public func master(slot: Int) -> NodeAddress? { masterIndex(slot: slot).map { masters[$0] } }

    /// The master serving `key`.
    public func master(key: UnsafeRawBufferPointer) -> NodeAddress? { master(slot: HashSlot.of(key)) }

    /// The index in `masters` of the node serving `slot` (stable for the router's lifetime: a connection
    /// per index).
    public func masterIndex(slot: Int) -> Int? {
        let o = owner[slot]
        return o == Self.unowned ? nil : Int(o)
    }

    /// A `MOVED <slot> <host:port>`: the slot now belongs to that node (added when new). Returns whether
    /// the map changed. The address is taken as announced; resolve an empty host first
    /// (`NodeAddress(announced:port:connectionHost:)`).
    @discardableResult
    public mutating func moved(slot: Int, to address: NodeAddress) -> Bool {
        precondition(slot >= 0 && slot < HashSlot.count, "slot \(slot) out of range")
        let index: Int
        if let i = masters.firstIndex(of: address) {
            index = i
        } else {
            index = masters.count
            masters.append(address)
        }
        if owner[slot] == UInt16(index) { return false }
        owner[slot] = UInt16(index)
        movedCount += 1
        return true
    }

    /// Replaces the map with a fresh topology, keeping the indices of known masters.
    public mutating func update(_ topology: ClusterTopology) {
        let indexOf = topology.shards.map { shard -> UInt16 in
            if let i = masters.firstIndex(of: shard.master.address) { return UInt16(i) }
            masters.append(shard.master.address)
            return UInt16(masters.count - 1)
        }
        for slot in 0..<HashSlot.count {
            owner[slot] = topology.shardIndex(slot: slot).map { indexOf[$0] } ?? Self.unowned
        }
    }
}
