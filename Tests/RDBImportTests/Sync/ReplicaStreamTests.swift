import RDBKit
import Testing
@testable import RDBImport
@testable import RDBReplication

/// The pieces between the socket and the importer, without a network: the queue with its spool file, the
/// segment reader, and what the import does with a master's stream (GETACK, PING, SELECT).
@Suite("Replica queue and stream (no network)")
struct ReplicaStreamTests {
    @Test("Bytes come back in order across memory and the spool file, with the segment's marks")
    func queueOrderAcrossSpool() throws {
        let q = ReplicaQueue(memoryLimit: 100, spoolDirectory: "/tmp")
        var sent: [UInt8] = []
        q.begin(SegmentStart(kind: .full, replid: String(repeating: "a", count: 40), offset: 7))
        for i in 0..<200 {
            let chunk = (0..<(i % 37 + 1)).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
            chunk.withUnsafeBytes { _ = q.append($0, arrival: Int64(i * 10)) }
            sent += chunk
            if i == 120 { q.streamStart(7) }
        }
        q.end(.stopped)
        guard case .success(let start) = try q.nextSegment() else { Issue.record("no segment"); return }
        let reader = SegmentReader(queue: q, start: start)
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 13)
        while true {
            let n = try buf.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { break }
            got += buf[0..<n]
        }
        #expect(got == sent)
        #expect(reader.ended == .stopped)
        #expect(q.spooledTotal > 0, "nothing went to the spool file")
        #expect(q.pending.spooled == 0 && q.pending.memory == 0)
        let streamAt = try #require(reader.streamStartInput)
        #expect(reader.sourceOffset(input: streamAt + 5) == 12)
        #expect(reader.sourceOffset(input: streamAt - 1) == nil)
    }

    @Test("A master's stream through the import: GETACK answered, PING and REPLCONF kept back, SELECT reported")
    func streamCommandsThroughImport() throws {
        func cmd(_ a: String...) -> [UInt8] {
            var out = Array("*\(a.count)\r\n".utf8)
            for x in a { out += Array("$\(x.utf8.count)\r\n\(x)\r\n".utf8) }
            return out
        }
        let bytes = cmd("SELECT", "2") + cmd("PING") + cmd("SET", "k", "v", "PX", "5000") + cmd("REPLCONF", "GETACK", "*")
            + cmd("MULTI") + cmd("INCR", "n") + cmd("EXEC") + cmd("SELECT", "0") + cmd("DEL", "k")
        let hooks = StreamHooks()
        var getacks = 0
        var selects: [(Int, Int)] = []
        hooks.onGetAck = { getacks += 1 }
        hooks.onSelect = { selects.append(($0, $1)) }
        hooks.arrivalMillis = { _ in 1_000 }
        var o = ImportOptions()
        o.dryRun = true
        o.stream = hooks
        let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: 5), name: "stream")
        let opened = OpenedInput(path: "stream", kind: .aof, input: input, fileSize: nil)
        let r = Importer(target: nil, options: o).run(inputs: [.opened(opened)])
        #expect(r.status == .success, "\(r.failure ?? "-")")
        #expect(getacks == 1)
        #expect(selects.map(\.1) == [2, 0])
        #expect(selects.first?.0 == cmd("SELECT", "2").count)
        // SET, INCR inside MULTI/EXEC (with MULTI and EXEC), DEL: PING, REPLCONF and SELECT are not sent.
        #expect(r.files[0].aofCommands == 5, "\(r.files[0])")
    }
}
