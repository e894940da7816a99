import RDBKit

extension RESPWriter {
    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        closeChunk()
        try out.flushWithinKeyIfNeeded()
        entryCount += 1
        liveIDs.append(id)
        enc.begin(maxArguments: 3 + 2 * fieldCount)
        enc.argument("XADD")
        enc.argument(keyBuffer.bytes)
        enc.argument(id)
    }

    public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws {
        enc.argument(field)
        enc.argument(value)
    }

    public mutating func endStreamEntry() throws {
        enc.end()
        commandsWritten += 1
    }

    public mutating func streamMetadata(_ m: RDBStreamMetadata) throws {
        stream = m
        if m.length != entryCount {
            lossy = "the file says the stream has \(m.length) entries but holds \(entryCount): XLEN will be \(entryCount)"
        }
        if entryCount == 0 {
            // No live entries: create the stream with an entry that is trimmed right away; XSETID below
            // puts the real last ID (and counters) in place.
            enc.begin(maxArguments: 7)
            enc.argument("XADD")
            enc.argument(keyBuffer.bytes)
            enc.argument("MAXLEN")
            enc.argument("0")
            enc.argument(StreamID(ms: 0, seq: 1))
            enc.argument("x")
            enc.argument("y")
            enc.end()
            commandsWritten += 1
        }
        let full = streamMetadataArgs
        enc.begin(maxArguments: full ? 7 : 3)
        enc.argument("XSETID")
        enc.argument(keyBuffer.bytes)
        enc.argument(m.lastID)
        if full {
            enc.argument("ENTRIESADDED")
            enc.argument(unsigned: m.entriesAdded)
            enc.argument("MAXDELETEDID")
            enc.argument(m.maxDeletedEntryID)
        }
        enc.end()
        commandsWritten += 1
    }

    public mutating func beginStreamGroup(_ g: RDBStreamGroup) throws {
        group = g
        groupName.truncate(to: 0)
        groupName.append(g.name)
        pel.removeAll(keepingCapacity: true)
        pelIndex.removeAll(keepingCapacity: true)
        owner.removeAll(keepingCapacity: true)
        consumerNames.truncate(to: 0)
        consumerEnds.removeAll(keepingCapacity: true)
    }

    public mutating func streamPendingEntry(_ e: RDBStreamPendingEntry) throws {
        pelIndex[e.id] = pel.count
        pel.append(e)
        owner.append(-1)
    }

    public mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws {
        consumerNames.append(c.name)
        consumerEnds.append(consumerNames.pendingCount)
    }

    public mutating func streamConsumerPendingID(_ id: StreamID) throws {
        let c = consumerEnds.count - 1
        if let i = pelIndex[id], c >= 0 { owner[i] = c }
    }

    public mutating func streamNackedID(_ id: StreamID) throws {
        lossy = "stream PEL entries without a consumer (NACK) left out"
    }

    func consumerName(_ c: Int) -> UnsafeRawBufferPointer {
        let s = c == 0 ? 0 : consumerEnds[c - 1]
        return UnsafeRawBufferPointer(rebasing: consumerNames.bytes[s..<consumerEnds[c]])
    }

    public mutating func endStreamGroup() throws {
        guard let g = group else { return }
        enc.begin(maxArguments: 7)
        enc.argument("XGROUP")
        enc.argument("CREATE")
        enc.argument(keyBuffer.bytes)
        enc.argument(groupName.bytes)
        enc.argument(g.lastDeliveredID)
        if streamMetadataArgs, let r = g.entriesRead {
            enc.argument("ENTRIESREAD")
            enc.argument(r)
        }
        enc.end()
        commandsWritten += 1
        // A consumer that claims no entry here is created on its own (XCLAIM creates the others).
        var claims = [Int](repeating: 0, count: consumerEnds.count)
        var live = liveIDs.reader()
        for (i, e) in pel.enumerated() {
            let c = owner[i]
            if c < 0 {
                lossy = "stream PEL entries without a consumer left out"
                continue
            }
            // XCLAIM skips (and forgets) an entry the stream no longer holds, FORCE or not: no command adds it.
            guard live.contains(e.id) else {
                lossy = "stream PEL entries of entries the stream no longer holds (deleted or trimmed) left out: XCLAIM cannot claim them"
                continue
            }
            claims[c] += 1
            enc.begin(maxArguments: 13)
            enc.argument("XCLAIM")
            enc.argument(keyBuffer.bytes)
            enc.argument(groupName.bytes)
            enc.argument(consumerName(c))
            enc.argument("0")
            enc.argument(e.id)
            enc.argument("TIME")
            enc.argument(e.deliveryTimeMs)
            enc.argument("RETRYCOUNT")
            enc.argument(unsigned: e.deliveryCount)
            enc.argument("FORCE")
            enc.argument("JUSTID")
            enc.end()
            commandsWritten += 1
            try out.flushWithinKeyIfNeeded()
        }
        for c in 0..<consumerEnds.count where claims[c] == 0 {
            enc.begin(maxArguments: 5)
            enc.argument("XGROUP")
            enc.argument("CREATECONSUMER")
            enc.argument(keyBuffer.bytes)
            enc.argument(groupName.bytes)
            enc.argument(consumerName(c))
            enc.end()
            commandsWritten += 1
        }
        group = nil
    }

    /// The IDs of a stream's live entries, in order, in a few bytes each: per entry, as LEB128 varints, the
    /// difference of its milliseconds to the entry before's, then its sequence number (consecutive entries
    /// mostly share a millisecond or are close, and their sequence numbers are small). At most a few bytes an
    /// entry, against the tens the entry takes in the file: memory within the value's size.
    final class LiveStreamIDs {
        let bytes = OutputBuffer(target: nil, flushThreshold: 1 << 12)
        var lastMs: UInt64 = 0

        func removeAll() {
            bytes.truncate(to: 0)
            lastMs = 0
        }

        /// Appends the next live entry's ID (IDs come in ascending order).
        @inline(__always)
        func append(_ id: StreamID) {
            put(id.ms &- lastMs)
            put(id.seq)
            lastMs = id.ms
        }

        @inline(__always)
        func put(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(truncatingIfNeeded: v))
        }

        func reader() -> Reader { Reader(ids: self) }

        /// Answers whether IDs asked in ascending order are live, reading the IDs once; an ID lower than the one
        /// asked before starts the reading over (a PEL out of order, in a hand-made file).
        struct Reader {
            let ids: LiveStreamIDs
            var at = 0
            var ms: UInt64 = 0
            var current: StreamID? = nil
            var asked = StreamID(ms: 0, seq: 0)

            mutating func contains(_ id: StreamID) -> Bool {
                if id < asked { self = Reader(ids: ids) }
                asked = id
                while true {
                    if let c = current, !(c < id) { return c == id }
                    guard let next = nextID() else { return false }
                    current = next
                }
            }

            mutating func nextID() -> StreamID? {
                let b = ids.bytes.bytes
                guard at < b.count else { return nil }
                ms &+= varint(b)
                return StreamID(ms: ms, seq: varint(b))
            }

            mutating func varint(_ b: UnsafeRawBufferPointer) -> UInt64 {
                var v: UInt64 = 0
                var shift: UInt64 = 0
                while at < b.count {
                    let x = b[at]
                    at += 1
                    v |= UInt64(x & 0x7F) << shift
                    if x < 0x80 { break }
                    shift += 7
                }
                return v
            }
        }
    }

    public mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws {}

    public mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws {
        lossy = "stream idempotency records left out"
    }
}
