extension RDBParser {
    @inlinable
    func readStreamID(_ c: inout ByteCursor, _ what: StaticString) throws -> StreamID {
        let ms = try c.readLength(what)
        let seq = try c.readLength(what)
        return StreamID(ms: ms, seq: seq)
    }

    @inlinable
    func readRawStreamID(_ c: inout ByteCursor) throws -> StreamID {
        let ms = try c.readBE(UInt64.self, "a 16-byte stream ID")
        let seq = try c.readBE(UInt64.self, "a 16-byte stream ID")
        return StreamID(ms: ms, seq: seq)
    }

    /// A stream node's key: the master entry ID, 16 bytes big-endian.
    @inlinable
    mutating func readStreamNodeKey(_ c: inout ByteCursor) throws -> StreamID {
        let keyAt = c.offset
        let nodeKey = try readString(&c, slot: Slot.b)
        guard !nodeKey.isInteger, nodeKey.bytes.count == 16 else {
            throw RDBError.corrupt(at: keyAt, "stream node", "node key is \(nodeKey.count) bytes, not 16")
        }
        return StreamID(
            ms: UInt64(bigEndian: nodeKey.bytes.loadUnaligned(as: UInt64.self)),
            seq: UInt64(bigEndian: nodeKey.bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// Walks a stream value (types 15, 19, 21, 26, 27). With `decode` false, node listpacks are stepped
    /// over unparsed and nothing is reported.
    @inlinable
    mutating func walkStream<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, version: Int, decode: Bool) throws {
        let nodes = try c.readCount("stream node count", minItemSize: 2)
        var firstLive: StreamID? = nil
        if decode && nodes >= LZFAhead.minimumNodes && options.decompressAhead, let ahead = scratch.lookahead() {
            try walkNodesAhead(&c, ahead, count: nodes, framing: .stream) { p, s, job in
                if s.isInteger { throw RDBError.corrupt(at: job.blobOffset, "stream listpack", "blob is an integer-encoded string") }
                try p.walkStreamNode(s.bytes, blobOffset: job.blobOffset, master: job.master, &v, firstLive: &firstLive)
            }
        } else {
            for _ in 0..<nodes {
                let master = try readStreamNodeKey(&c)
                if decode {
                    let lpAt = c.offset
                    let blob = try readBlob(&c, slot: Slot.a, "stream listpack")
                    try walkStreamNode(blob, blobOffset: lpAt, master: master, &v, firstLive: &firstLive)
                } else {
                    try skipString(&c)
                }
            }
        }
        let length = try c.readLength("a stream length")
        let lastID = try readStreamID(&c, "a stream last ID")
        var firstID = firstLive ?? StreamID(ms: 0, seq: 0)
        var maxDeleted = StreamID(ms: 0, seq: 0)
        var entriesAdded = length
        if version >= 2 {
            firstID = try readStreamID(&c, "a stream first ID")
            maxDeleted = try readStreamID(&c, "a stream max deleted ID")
            entriesAdded = try c.readLength("a stream entries-added count")
        }
        let groups = try c.readCount("stream group count", minItemSize: 4)
        if decode {
            try v.streamMetadata(RDBStreamMetadata(
                length: length, lastID: lastID, firstID: firstID, maxDeletedEntryID: maxDeleted,
                entriesAdded: entriesAdded, groupCount: groups, version: version))
        }
        for _ in 0..<groups {
            let name = try readString(&c, slot: Slot.a)
            let lastDelivered = try readStreamID(&c, "a group last-delivered ID")
            var entriesRead: Int64? = nil
            if version >= 2 {
                let r = try c.readLength("a group entries-read count")
                entriesRead = r == UInt64.max ? nil : Int64(truncatingIfNeeded: r)
            }
            let pel = try c.readCount("group PEL size", minItemSize: 25)
            if decode {
                try v.beginStreamGroup(RDBStreamGroup(name: name, lastDeliveredID: lastDelivered, entriesRead: entriesRead, pendingCount: pel))
            }
            for _ in 0..<pel {
                let id = try readRawStreamID(&c)
                let t = try c.readLE(Int64.self, "a PEL delivery time")
                let n = try c.readLength("a PEL delivery count")
                if decode { try v.streamPendingEntry(RDBStreamPendingEntry(id: id, deliveryTimeMs: t, deliveryCount: n)) }
            }
            let consumers = try c.readCount("group consumer count", minItemSize: 10)
            for _ in 0..<consumers {
                let cname = try readString(&c, slot: Slot.a)
                let seen = try c.readLE(Int64.self, "a consumer seen time")
                let active = version >= 3 ? try c.readLE(Int64.self, "a consumer active time") : seen
                let owned = try c.readCount("consumer PEL size", minItemSize: 16)
                if decode {
                    try v.beginStreamConsumer(RDBStreamConsumer(name: cname, seenTimeMs: seen, activeTimeMs: active, pendingCount: owned))
                }
                for _ in 0..<owned {
                    let id = try readRawStreamID(&c)
                    if decode { try v.streamConsumerPendingID(id) }
                }
                if decode { try v.endStreamConsumer() }
            }
            if version >= 5 {
                let nacked = try c.readCount("group NACK list size", minItemSize: 16)
                for _ in 0..<nacked {
                    let id = try readRawStreamID(&c)
                    if decode { try v.streamNackedID(id) }
                }
            }
            if decode { try v.endStreamGroup() }
        }
        if version >= 4 {
            let duration = try c.readLength("an IDMP duration")
            let maxEntries = try c.readLength("an IDMP max entries")
            if decode { try v.streamIdempotencyConfig(durationSeconds: duration, maxEntries: maxEntries) }
            let producers = try c.readCount("IDMP producer count", minItemSize: 2)
            for _ in 0..<producers {
                let producer = try readString(&c, slot: Slot.a)
                let n = try c.readCount("IDMP entry count", minItemSize: 3)
                for _ in 0..<n {
                    let iid = try readString(&c, slot: Slot.b)
                    let id = try readStreamID(&c, "an IDMP stream ID")
                    if decode { try v.streamIdempotentID(producer: producer, iid: iid, id: id) }
                }
            }
            let added = try c.readLength("an IDMP added count")
            let dups = try c.readLength("an IDMP duplicates count")
            if decode { try v.streamIdempotencyStats(iidsAdded: added, iidsDuplicates: dups) }
        }
    }

    /// Walks one node listpack: the master entry, then each entry (deleted ones are checked and not reported).
    @inlinable
    mutating func walkStreamNode<V: RDBVisitor>(
        _ blob: UnsafeRawBufferPointer, blobOffset: Int, master: StreamID, _ v: inout V, firstLive: inout StreamID?
    ) throws {
        var lp = try ListpackReader(blob, blobOffset: blobOffset)
        if lp.isEmpty { throw RDBError.corrupt(at: blobOffset, "stream node", "empty listpack") }
        let count = try lp.nextInteger("the node's live count")
        let deleted = try lp.nextInteger("the node's deleted count")
        let numFields = try lp.nextInteger("the master field count")
        guard count >= 0, deleted >= 0, numFields >= 0, numFields <= blob.count else {
            throw RDBError.corrupt(at: blobOffset, "stream node", "impossible master entry (count \(count), deleted \(deleted), fields \(numFields))")
        }
        masterFields.removeAll(keepingCapacity: true)
        for _ in 0..<numFields { masterFields.append(try lp.nextRequired("a master field")) }
        guard try lp.nextInteger("the master entry terminator") == 0 else {
            throw RDBError.corrupt(at: blobOffset, "stream node", "master entry does not end with 0")
        }
        var live: Int64 = 0
        var dead: Int64 = 0
        while let flagsElement = try lp.next() {
            guard flagsElement.isInteger || DecimalFormatter.parseCanonical(flagsElement.bytes) != nil else {
                throw RDBError.corrupt(at: blobOffset, "stream node", "entry flags are not an integer")
            }
            let flags = flagsElement.isInteger ? flagsElement.integer : DecimalFormatter.parseCanonical(flagsElement.bytes)!
            let msDelta = try lp.nextInteger("an entry ms delta")
            let seqDelta = try lp.nextInteger("an entry seq delta")
            let id = StreamID(ms: master.ms &+ UInt64(bitPattern: msDelta), seq: master.seq &+ UInt64(bitPattern: seqDelta))
            let sameFields = flags & 2 != 0
            let isDeleted = flags & 1 != 0
            let nf: Int64 = sameFields ? numFields : try lp.nextInteger("an entry field count")
            guard nf >= 0, nf <= blob.count else {
                throw RDBError.corrupt(at: blobOffset, "stream node", "entry \(id) claims \(nf) fields")
            }
            if isDeleted { dead += 1 } else {
                live += 1
                if firstLive == nil { firstLive = id }
                try v.beginStreamEntry(id: id, fieldCount: Int(nf))
            }
            for i in 0..<Int(nf) {
                let f = sameFields ? masterFields[i] : try lp.nextRequired("an entry field")
                let value = try lp.nextRequired("an entry value")
                if !isDeleted { try v.streamEntryField(f, value: value) }
            }
            let lpCount = try lp.nextInteger("an entry's element count")
            let expected = sameFields ? nf + 3 : 2 * nf + 4
            guard lpCount == expected else {
                throw RDBError.corrupt(at: blobOffset, "stream node", "entry \(id) ends with count \(lpCount), expected \(expected)")
            }
            if !isDeleted { try v.endStreamEntry() }
        }
        guard live == count, dead == deleted else {
            throw RDBError.corrupt(at: blobOffset, "stream node", "master entry counts \(count) live and \(deleted) deleted entries, found \(live) and \(dead)")
        }
    }

    /// Walks an array value (type 28).
    @inlinable
    mutating func walkArray<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, decode: Bool) throws {
        let at = c.offset
        let n = try c.readCount("array element count", minItemSize: 3)
        guard n > 0 else { throw RDBError.corrupt(at: at, "array", "no elements") }
        let hasInsert = try c.readLength("an array insert-index flag")
        if hasInsert == 1 { _ = try c.readLength("an array insert index") } else if hasInsert != 0 {
            throw RDBError.corrupt(at: at, "array", "insert-index flag \(hasInsert)")
        }
        var previous: UInt64? = nil
        for _ in 0..<n {
            let idxAt = c.offset
            let idx = try c.readLength("an array index")
            if let p = previous, idx <= p {
                throw RDBError.corrupt(at: idxAt, "array", "index \(idx) does not ascend (previous \(p))")
            }
            previous = idx
            let tag = try c.readLength("an array element tag")
            switch tag {
            case 0, 3:
                if decode { try v.arrayElement(index: idx, .string(try readString(&c, slot: Slot.a))) } else { try skipString(&c) }
            case 1:
                let i = try c.readLE(Int64.self, "an array integer")
                if decode { try v.arrayElement(index: idx, .integer(i)) }
            case 2:
                let d = try c.readDoubleLE("an array float")
                if decode { try v.arrayElement(index: idx, .double(d)) }
            default:
                throw RDBError.corrupt(at: idxAt, "array", "unknown element tag \(tag)")
            }
        }
    }
}
