import RDBKit

/// Turns the relative expiries of a replication stream into absolute ones (Redis 6.2 replicates
/// `SET … EX|PX`, `SETEX`, `PSETEX`, `EXPIRE`, `PEXPIRE` and `RESTORE key ttl` as the client sent them;
/// 7.0+ and Valkey already send `PXAT` / `PEXPIREAT`). A replay that lags would otherwise move every such
/// expiry later by the lag.
///
/// The rewritten command is built in a reused buffer (no allocation per command once it has grown).
final class RelativeExpiry {
    private var bytes: [UInt8] = []
    private var spans: [Int] = []

    /// Calls `body` with the command rewritten to absolute expiries counted from `now` (unix ms), and
    /// returns true; returns false (not calling it) when the command has no relative expiry.
    func rewrite(_ c: AOFCommand, now: Int64, _ body: (AOFCommand) throws -> Void) rethrows -> Bool {
        let n = c.argumentCount
        if c.nameEquals("SET") && n >= 5 {
            var i = 3
            var at = -1
            var ms: Int64 = 0
            while i + 1 < n {
                let o = c.args.bytes(i)
                if AOFArguments.equalsIgnoringCase(o, "EX") || AOFArguments.equalsIgnoringCase(o, "PX") {
                    guard let v = DecimalFormatter.parseCanonical(c.args.bytes(i + 1)) else { return false }
                    ms = o[0] | 0x20 == UInt8(ascii: "e") ? Self.times1000(v) : v
                    at = i
                    break
                }
                i += 1
            }
            guard at >= 0 else { return false }
            begin()
            for k in 0..<n {
                if k == at { add("PXAT") } else if k == at + 1 { add(Self.sum(now, ms)) } else { add(c.args.bytes(k)) }
            }
        } else if (c.nameEquals("SETEX") || c.nameEquals("PSETEX")) && n == 4 {
            guard let v = DecimalFormatter.parseCanonical(c.args.bytes(2)) else { return false }
            let ms = c.nameEquals("SETEX") ? Self.times1000(v) : v
            begin()
            add("SET")
            add(c.args.bytes(1))
            add(c.args.bytes(3))
            add("PXAT")
            add(Self.sum(now, ms))
        } else if (c.nameEquals("EXPIRE") || c.nameEquals("PEXPIRE")) && n >= 3 {
            guard let v = DecimalFormatter.parseCanonical(c.args.bytes(2)) else { return false }
            let ms = c.nameEquals("EXPIRE") ? Self.times1000(v) : v
            begin()
            add("PEXPIREAT")
            add(c.args.bytes(1))
            add(Self.sum(now, ms))
            for k in 3..<n { add(c.args.bytes(k)) }
        } else if c.nameEquals("RESTORE") && n >= 4 {
            guard let v = DecimalFormatter.parseCanonical(c.args.bytes(2)), v > 0 else { return false }
            for k in 4..<n where AOFArguments.equalsIgnoringCase(c.args.bytes(k), "ABSTTL") { return false }
            begin()
            for k in 0..<n { if k == 2 { add(Self.sum(now, v)) } else { add(c.args.bytes(k)) } }
            add("ABSTTL")
        } else {
            return false
        }
        try bytes.withUnsafeBytes { raw in
            try spans.withUnsafeBufferPointer { sp in
                try body(AOFCommand(db: c.db, offset: c.offset, byteCount: c.byteCount, isInline: c.isInline,
                                    args: AOFArguments(base: raw.baseAddress, spans: sp)))
            }
        }
        return true
    }

    private func begin() {
        bytes.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
    }

    private func add(_ b: UnsafeRawBufferPointer) {
        spans.append(bytes.count)
        spans.append(b.count)
        bytes.append(contentsOf: b)
    }

    private func add(_ s: StaticString) {
        add(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    private func add(_ v: Int64) {
        var t = String(v)
        t.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    static func times1000(_ v: Int64) -> Int64 {
        let (r, o) = v.multipliedReportingOverflow(by: 1000)
        return o ? (v < 0 ? .min / 2 : .max / 2) : r
    }

    static func sum(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? (b < 0 ? .min : .max) : r
    }
}
