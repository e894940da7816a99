extension RDBParser {
    // MARK: quicklist nodes

    /// One node of a Redis 3.2–6.2 quicklist: a ziplist of elements.
    @inlinable
    func ziplistNode<V: RDBVisitor>(_ s: RDBString, at: Int, _ v: inout V) throws {
        if s.isInteger { throw RDBError.corrupt(at: at, "quicklist node", "blob is an integer-encoded string") }
        var z = try ZiplistReader(s.bytes, blobOffset: at)
        try v.listElements(from: &z)
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
            try v.listElements(from: &lp)
        default:
            throw RDBError.corrupt(at: at, "quicklist node", "unknown container \(container) (1 = plain, 2 = packed)")
        }
    }

    /// The nodes of a long quicklist or stream, with their LZF blocks decompressed a few nodes ahead on
    /// the worker thread (`LZFAhead`): the same events, errors and offsets as the node-by-node loop. A
    /// node whose framing is bad stops the read-ahead; its error is thrown when the walk gets to it,
    /// after every node before it has been reported. `body` walks one node's (decompressed) string.
    @inlinable
    mutating func walkNodesAhead(
        _ c: inout ByteCursor, _ ahead: LZFAhead, count n: Int, framing: NodeFraming,
        _ body: (inout RDBParser, RDBString, LZFAhead.Job) throws -> Void
    ) throws {
        defer { ahead.drain() }
        let depth = LZFAhead.depth
        let base = ahead.postedCount
        var posted = 0
        var framingOK = true
        while posted < n && posted < depth && framingOK {
            framingOK = prepareNode(ahead.jobs[(base &+ posted) % depth], &c, framing)
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
                throw job.error ?? RDBError.invalid(at: job.nodeOffset, "node")
            }
            try body(&self, s, job)
            // The node is consumed: its slot takes the node `depth` places further on.
            ahead.release(job)
            if posted < n && framingOK {
                framingOK = prepareNode(job, &c, framing)
                ahead.post(job)
                posted += 1
            }
        }
    }

    /// What precedes each node's string.
    @usableFromInline
    enum NodeFraming {
        /// Nothing (a Redis 3.2–6.2 quicklist of ziplists).
        case ziplist
        /// A container number (a Redis 7 quicklist).
        case quicklist
        /// A 16-byte node key holding the master entry ID (a stream).
        case stream
    }

    /// Reads a node's framing into `job`: its container or master ID, and its string, either as it is
    /// (uncompressed or an integer) or as an LZF block to decompress. Returns false (the error kept in
    /// the job) when the framing is bad, and the cursor cannot go on.
    @usableFromInline
    mutating func prepareNode(_ job: LZFAhead.Job, _ c: inout ByteCursor, _ framing: NodeFraming) -> Bool {
        do {
            job.nodeOffset = c.offset
            switch framing {
            case .ziplist: job.container = 2
            case .quicklist: job.container = try c.readLength("a quicklist container")
            case .stream: job.master = try readStreamNodeKey(&c)
            }
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
