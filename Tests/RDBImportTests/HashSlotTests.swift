import Testing
import RDBKit
@testable import RDBImport
@testable import RedisWire

@Suite("Cluster hash slots")
struct HashSlotTests {
    /// The CRC bit by bit, without the table: an independent check of it.
    static func bitwiseCRC16(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc ^= UInt16(b) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }

    @Test func crcCheckValue() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        for n in 0..<300 {
            let bytes = ClusterKeys.binary(n, length: n)
            #expect(HashSlot.crc16(bytes) == Self.bitwiseCRC16(bytes), "length \(n)")
        }
    }

    /// Live vectors from the protocol notes (identical on 6.2, 7.0, 8.1).
    @Test func serverVectors() {
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("{user1000}.following") == 3443)
        #expect(HashSlot.of("{user1000}.followers") == 3443)
        #expect(HashSlot.of("foo{}{bar}") == 8363)
        #expect(HashSlot.of("foo{{bar}}zap") == 4015)
        #expect(HashSlot.of("foo{bar}{zap}") == 5061)
    }

    @Test func hashTagRules() {
        func whole(_ k: String) -> Int { Int(Self.bitwiseCRC16(Array(k.utf8)) & 0x3FFF) }
        #expect(HashSlot.of("{}") == whole("{}"))           // empty tag: whole key
        #expect(HashSlot.of("{a") == whole("{a"))           // unclosed
        #expect(HashSlot.of("a}b") == whole("a}b"))         // `}` before any `{`
        #expect(HashSlot.of("a}{b}") == HashSlot.of("b"))   // the first `}` after the first `{`
        #expect(HashSlot.of("{{a}}") == HashSlot.of("{a"))  // tag is `{a`
        #expect(HashSlot.of("x{a}{b}") == HashSlot.of("a"))
        #expect(HashSlot.of("{}{a}") == whole("{}{a}"))     // the first `{` decides, even with a later tag
        #expect(HashSlot.of("") == 0)
        #expect(HashSlot.of("{") == whole("{") && HashSlot.of("}") == whole("}"))
    }

    @Test func everyEntryPointAgrees() {
        let keys: [[UInt8]] = [[0, 0xFF, 0x7B, 0x01, 0x7D, 0x80], [0x7B, 0x7D], Array("{tag}rest".utf8), [0xC3, 0x28], []]
        for k in keys {
            let viaRaw = k.withUnsafeBytes { HashSlot.of($0) }
            #expect(HashSlot.of(bytes: k) == viaRaw)
            #expect(HashSlot.of(bytes: k.lazy.map { $0 }) == viaRaw, "non-contiguous collection")
            #expect(k.withUnsafeBytes { HashSlot.of(RDBString(bytes: $0)) } == viaRaw)
        }
        let binaryTagged: [UInt8] = [0, 0xFF, 0x7B, 0x01, 0x7D, 0x80]  // tag: the one byte 0x01
        #expect(HashSlot.of(bytes: binaryTagged) == HashSlot.of(bytes: [UInt8(0x01)]))
        // An int-encoded string hashes as its decimal text.
        #expect(HashSlot.of(RDBString(integer: -1234)) == HashSlot.of("-1234"))
    }

    @Test func slotsAreInRangeAndSpread() {
        var seen = Set<Int>()
        for i in 0..<100_000 {
            let s = HashSlot.of("key:\(i)")
            #expect((0..<HashSlot.count).contains(s))
            seen.insert(s)
        }
        // 100k sequential names reach nearly every slot (a wrong mask or table would leave far fewer).
        #expect(seen.count > 16_000)
    }
}
