import RDBKit
import Testing
@testable import RDBImport

/// Redis 6.2's relative expiries in a replication stream become absolute ones (no network).
@Suite("Relative expiries of a replication stream")
struct RelativeExpiryTests {
    static func rewrite(_ args: [String], now: Int64 = 1_000_000) -> [String]? {
        var bytes: [UInt8] = []
        var spans: [Int] = []
        for a in args {
            spans.append(bytes.count)
            spans.append(a.utf8.count)
            bytes += Array(a.utf8)
        }
        var out: [String]?
        let r = RelativeExpiry()
        let changed = bytes.withUnsafeBytes { raw in
            spans.withUnsafeBufferPointer { sp in
                let c = AOFCommand(db: 0, offset: 0, byteCount: 0, isInline: false, args: AOFArguments(base: raw.baseAddress, spans: sp))
                return r.rewrite(c, now: now) { out = $0.arrays.map { String(decoding: $0, as: UTF8.self) } }
            }
        }
        return changed ? out : nil
    }

    @Test func rewrites() {
        #expect(Self.rewrite(["SET", "k", "v", "EX", "10"]) == ["SET", "k", "v", "PXAT", "1010000"])
        #expect(Self.rewrite(["set", "k", "v", "NX", "px", "50"]) == ["set", "k", "v", "NX", "PXAT", "1000050"])
        #expect(Self.rewrite(["SETEX", "k", "10", "v"]) == ["SET", "k", "v", "PXAT", "1010000"])
        #expect(Self.rewrite(["PSETEX", "k", "10", "v"]) == ["SET", "k", "v", "PXAT", "1000010"])
        #expect(Self.rewrite(["EXPIRE", "k", "3"]) == ["PEXPIREAT", "k", "1003000"])
        #expect(Self.rewrite(["pexpire", "k", "3", "NX"]) == ["PEXPIREAT", "k", "1000003", "NX"])
        #expect(Self.rewrite(["RESTORE", "k", "20", "payload", "REPLACE"]) == ["RESTORE", "k", "1000020", "payload", "REPLACE", "ABSTTL"])
    }

    @Test func leavesAbsoluteAndOtherCommandsAlone() {
        #expect(Self.rewrite(["SET", "k", "v"]) == nil)
        #expect(Self.rewrite(["SET", "k", "v", "PXAT", "5"]) == nil)
        #expect(Self.rewrite(["SET", "k", "v", "EX", "ten"]) == nil)
        #expect(Self.rewrite(["RESTORE", "k", "0", "payload"]) == nil)
        #expect(Self.rewrite(["RESTORE", "k", "7", "payload", "ABSTTL"]) == nil)
        #expect(Self.rewrite(["PEXPIREAT", "k", "5"]) == nil)
        #expect(Self.rewrite(["GET", "k"]) == nil)
        // Overflow saturates instead of trapping.
        #expect(Self.rewrite(["EXPIRE", "k", "9223372036854775807"]) != nil)
    }
}
