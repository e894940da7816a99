import RDBKit

/// The stream part of a key's JSON, shared by `JSONWriter` and `JSONLWriter`: entries (`{"id","fields"}`),
/// then each group with its PEL (every pending entry with the consumer that owns it) and its consumers.
///
/// The file lists a group's PEL before the consumers, and only the consumers say which entry is whose, so
/// the PEL is held until the group ends and the consumers' JSON is gathered on the side meanwhile.
struct StreamJSON {
    var entryFirstField = true
    var firstGroup = true
    var pel: [RDBStreamPendingEntry] = []
    var owners: [StreamID: [UInt8]] = [:]
    var currentConsumer: [UInt8] = []
    var firstConsumerID = true
    let consumerJSON: OutputBuffer

    init(consumerBufferThreshold: Int) {
        consumerJSON = OutputBuffer(target: nil, flushThreshold: consumerBufferThreshold)
    }

    /// A stream key begins (its groups are the first of the key's).
    mutating func beginKey() { firstGroup = true }

    mutating func beginEntry(_ id: StreamID, _ out: OutputBuffer) {
        out.append("{\"id\":")
        out.appendJSONStreamID(id)
        out.append(",\"fields\":[")
        entryFirstField = true
    }

    mutating func entryField(_ field: RDBString, _ value: RDBString, _ out: OutputBuffer, _ binary: BinaryMode) {
        if entryFirstField { entryFirstField = false } else { out.append(UInt8(ascii: ",")) }
        out.appendJSONString(field, mode: binary)
        out.append(UInt8(ascii: ","))
        out.appendJSONString(value, mode: binary)
    }

    func endEntry(_ out: OutputBuffer) { out.append("]}") }

    mutating func beginGroup(_ g: RDBStreamGroup, _ out: OutputBuffer, _ binary: BinaryMode) {
        if firstGroup { firstGroup = false } else { out.append(UInt8(ascii: ",")) }
        out.append("{\"name\":")
        out.appendJSONString(g.name, mode: binary)
        out.append(",\"last_delivered_id\":")
        out.appendJSONStreamID(g.lastDeliveredID)
        out.append(",\"entries_read\":")
        if let r = g.entriesRead { out.append(decimal: r) } else { out.append("null") }
        pel.removeAll(keepingCapacity: true)
        owners.removeAll(keepingCapacity: true)
        _ = consumerJSON.take()
    }

    mutating func pendingEntry(_ e: RDBStreamPendingEntry) { pel.append(e) }

    mutating func beginConsumer(_ c: RDBStreamConsumer, _ binary: BinaryMode) {
        if consumerJSON.pendingCount > 0 { consumerJSON.append(UInt8(ascii: ",")) }
        consumerJSON.append("{\"name\":")
        consumerJSON.appendJSONString(c.name, mode: binary)
        consumerJSON.append(",\"seen_time_ms\":")
        consumerJSON.append(decimal: c.seenTimeMs)
        consumerJSON.append(",\"active_time_ms\":")
        consumerJSON.append(decimal: c.activeTimeMs)
        consumerJSON.append(",\"pending\":[")
        firstConsumerID = true
        currentConsumer = c.name.array
    }

    mutating func consumerPendingID(_ id: StreamID) {
        if firstConsumerID { firstConsumerID = false } else { consumerJSON.append(UInt8(ascii: ",")) }
        consumerJSON.appendJSONStreamID(id)
        owners[id] = currentConsumer
    }

    func endConsumer() { consumerJSON.append("]}") }

    func endGroup(_ out: OutputBuffer, _ binary: BinaryMode) {
        out.append(",\"pending\":[")
        for (i, e) in pel.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append("{\"id\":")
            out.appendJSONStreamID(e.id)
            out.append(",\"consumer\":")
            if let o = owners[e.id] {
                o.withUnsafeBytes { out.appendJSONString($0, mode: binary) }
            } else {
                out.append("null")
            }
            out.append(",\"delivery_count\":")
            out.append(unsigned: e.deliveryCount)
            out.append(",\"delivery_time_ms\":")
            out.append(decimal: e.deliveryTimeMs)
            out.append(UInt8(ascii: "}"))
        }
        out.append("],\"consumers\":[")
        out.append(consumerJSON.bytes)
        out.append("]}")
    }
}
