import RDBKit

extension RESPWriter {
    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        closeChunk()
        try out.flushWithinKeyIfNeeded()
        entryCount += 1
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
        consumerOwns.removeAll(keepingCapacity: true)
    }

    public mutating func streamPendingEntry(_ e: RDBStreamPendingEntry) throws {
        pelIndex[e.id] = pel.count
        pel.append(e)
        owner.append(-1)
    }

    public mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws {
        consumerNames.append(c.name)
        consumerEnds.append(consumerNames.pendingCount)
        consumerOwns.append(0)
    }

    public mutating func streamConsumerPendingID(_ id: StreamID) throws {
        let c = consumerEnds.count - 1
        if let i = pelIndex[id], c >= 0 {
            owner[i] = c
            consumerOwns[c] += 1
        }
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
        for (i, e) in pel.enumerated() {
            let c = owner[i]
            if c < 0 {
                lossy = "stream PEL entries without a consumer left out"
                continue
            }
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
        for c in 0..<consumerEnds.count where consumerOwns[c] == 0 {
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

    public mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws {}

    public mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws {
        lossy = "stream idempotency records left out"
    }
}
