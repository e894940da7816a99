extension RDBParser {
    // MARK: quicklist nodes

    /// One node of a Redis 3.2–6.2 quicklist: a ziplist of elements.
    @inlinable
    func ziplistNode<V: RDBVisitor>(_ s: RDBString, at: Int, _ v: inout V) throws {
        if s.isInteger { throw RDBError.corrupt(at: at, "quicklist node", "blob is an integer-encoded string") }
        var z = try ZiplistReader(s.bytes, blobOffset: at)
        while let e = try z.next() { try v.listElement(e) }
    }

    /// One node of a Redis 7 quicklist: a plain element (container 1) or a listpack of them (2).
    @inlinable
    func quicklistNode<V: RDBVisitor>(_ s: RDBString, container: UInt64, at: Int, blobAt: Int, _ v: inout V) throws {
        switch container {
        case 1:  // PLAIN: one element
            try v.listElement(s)
        case 2:  // PACKED: a listpack
            if s.isInteger { throw RDBError.corrupt(at: blobAt, "quicklist node", "listpack blob is an integer-encoded string") }
            // Like the server, an empty listpack node is skipped silently.
            var lp = try ListpackReader(s.bytes, blobOffset: blobAt)
            while let e = try lp.next() { try v.listElement(e) }
        default:
            throw RDBError.corrupt(at: at, "quicklist node", "unknown container \(container) (1 = plain, 2 = packed)")
        }
    }

    /// The nodes of a long quicklist, with their LZF blocks decompressed a few nodes ahead on the
    /// worker thread (`LZFAhead`): the same events, errors and offsets as the node-by-node loop. A node
    /// whose framing is bad stops the read-ahead; its error is thrown when the walk gets to it, after
    /// every node before it has been reported.
    @inlinable
    mutating func parseNodesAhead<V: RDBVisitor>(
        _ c: inout ByteCursor, _ v: inout V, _ ahead: LZFAhead, count n: Int, containers: Bool
    ) throws {
        defer { ahead.drain() }
        let depth = LZFAhead.depth
        let base = ahead.postedCount
        var posted = 0
        var framingOK = true
        while posted < n && posted < depth && framingOK {
            framingOK = prepareNode(ahead.jobs[(base &+ posted) % depth], &c, containers: containers)
            ahead.post(ahead.jobs[(base &+ posted) % depth])
            posted += 1
        }
        for i in 0..<n {
            let job = ahead.jobs[(base &+ i) % depth]
            let s: RDBString
            switch job.kind {
            case .block:
                guard ahead.finish(job, ahead: (base &+ i &+ 1)..<(base &+ posted)) else { throw RDBParser.lzfCorrupt(at: job.blobOffset, job.sourceCount, job.outputCount) }
                s = RDBString(bytes: job.bytes)
            case .string:
                s = job.string
            case .large:
                s = RDBString(bytes: try inflate(
                    UnsafeRawBufferPointer(start: job.source, count: job.sourceCount), readable: job.readable,
                    count: job.outputCount, slot: Slot.a, start: job.blobOffset))
            case .failed:
                throw job.error ?? RDBError.invalid(at: job.nodeOffset, "quicklist node")
            }
            if containers {
                try quicklistNode(s, container: job.container, at: job.nodeOffset, blobAt: job.blobOffset, &v)
            } else {
                try ziplistNode(s, at: job.nodeOffset, &v)
            }
            // The node is consumed: its slot takes the node `depth` places further on.
            ahead.release(job)
            if posted < n && framingOK {
                framingOK = prepareNode(job, &c, containers: containers)
                ahead.post(job)
                posted += 1
            }
        }
    }

    /// Reads a node's framing into `job`: its container, and its string, either as it is (uncompressed
    /// or an integer) or as an LZF block to decompress. Returns false (the error kept in the job) when
    /// the framing is bad, and the cursor cannot go on.
    @usableFromInline
    mutating func prepareNode(_ job: LZFAhead.Job, _ c: inout ByteCursor, containers: Bool) -> Bool {
        do {
            job.nodeOffset = c.offset
            job.container = containers ? try c.readLength("a quicklist container") : 2
            job.blobOffset = c.offset
            if c.position < c.end && c.base.load(fromByteOffset: c.position, as: UInt8.self) == 0xC3 {
                c.position += 1
                let (input, readable, count) = try lzfHeader(&c, start: job.blobOffset)
                job.source = input.baseAddress
                job.sourceCount = input.count
                job.readable = readable
                job.outputCount = count
                job.kind = count <= LZFAhead.maxBlock && job.reserve(count) ? .block : .large
            } else {
                job.string = try readString(&c, slot: Slot.a)  // not LZF: no scratch buffer is used
                job.kind = .string
            }
            return true
        } catch {
            job.kind = .failed
            job.error = error
            return false
        }
    }
}
