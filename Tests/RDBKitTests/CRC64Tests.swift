import Testing
import RDBKit

/// The carry-less CRC-64 (folding, the tail by byte shuffles, Barrett reduction) against slicing-by-8
/// alone: every length from 0 to 1100 (below 16 bytes, every tail length after each whole block, the
/// one- and four-lane folds, the 512-bit folds of 256-byte blocks where the CPU has them, and without
/// them), every start alignment, and updates split anywhere; the tables (eight- and four-byte steps) against a bit-at-a-time reference.
@Suite struct CRC64Tests {
    static let data: [UInt8] = {
        var rng = LZFTests.SplitMix(state: 64)
        return (0..<70_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }()

    static func tables(_ bytes: ArraySlice<UInt8>, from initial: UInt64 = 0) -> UInt64 {
        var c = CRC64(initial)
        bytes.withUnsafeBytes { c.updateWithTables($0) }
        return c.value
    }

    static func folded(_ bytes: ArraySlice<UInt8>, from initial: UInt64 = 0, wide: Bool = true) -> UInt64 {
        var c = CRC64(initial)
        bytes.withUnsafeBytes { c.update($0, wide: wide) }
        return c.value
    }

    @Test func foldedEqualsTablesAtEveryLengthAndAlignment() {
        var mismatches: [String] = []
        for length in Array(0...1100) + [4096 + 15, 65_536, 69_990] {
            for start in [0, 1, 3, 7, 8] where start + length <= Self.data.count {
                let slice = Self.data[start..<(start + length)]
                for initial: UInt64 in [0, 0xE9C6_D914_C4B8_D9CA] {
                    let expected = Self.tables(slice, from: initial)
                    for wide in [true, false] where Self.folded(slice, from: initial, wide: wide) != expected {
                        mismatches.append("length \(length) start \(start) initial \(initial) wide \(wide)")
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    /// Bit at a time, straight from the definition (reflected polynomial, initial value as given, no final XOR).
    static func bitwise(_ bytes: ArraySlice<UInt8>, from initial: UInt64 = 0) -> UInt64 {
        var crc = initial
        for b in bytes {
            crc ^= UInt64(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5 : crc >> 1 }
        }
        return crc
    }

    @Test func tablesEqualTheBitwiseDefinition() {
        #expect(Self.tables(ArraySlice("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        #expect(Self.folded(ArraySlice("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        for length in 0...80 {
            for start in [0, 5] {
                let slice = Self.data[start..<(start + length)]
                for initial: UInt64 in [0, 0x0123_4567_89AB_CDEF] {
                    #expect(Self.tables(slice, from: initial) == Self.bitwise(slice, from: initial), "length \(length) start \(start)")
                }
            }
        }
    }

    @Test func splitUpdatesEqualOneUpdate() {
        let whole = Self.tables(Self.data[...])
        for split in [1, 63, 64, 255, 256, 257, 1000, 34_567, 69_999] {
            var c = CRC64()
            Self.data.withUnsafeBytes { all in
                c.update(UnsafeRawBufferPointer(rebasing: all[0..<split]))
                c.update(UnsafeRawBufferPointer(rebasing: all[split...]))
            }
            #expect(c.value == whole, "split at \(split)")
        }
        #expect(CRC64.checksum(Array(String(repeating: "123456789", count: 100).utf8)) == Self.tables(ArraySlice(String(repeating: "123456789", count: 100).utf8)))
    }
}
