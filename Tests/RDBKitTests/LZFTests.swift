import Testing
import RDBKit

/// The decoder's LZF decompressor against liblzf's (the reference): the same verdict on every input,
/// the same bytes whenever both succeed.
@Suite struct LZFTests {
    /// A seeded generator (SplitMix64), so a failure names an input that can be rebuilt.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Text with repeats at every distance class: runs of one byte (distance 1), short periods
    /// (2–7, the byte-step path), longer copies, and random literals.
    static func sample(_ n: Int, _ rng: inout SplitMix) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            switch rng.next() % 5 {
            case 0: out += Array(repeating: UInt8.random(in: 0...255, using: &rng), count: Int.random(in: 1...300, using: &rng))
            case 1:
                let period = (0..<Int.random(in: 2...7, using: &rng)).map { _ in UInt8.random(in: 97...122, using: &rng) }
                for i in 0..<Int.random(in: 3...200, using: &rng) { out.append(period[i % period.count]) }
            case 2 where out.count > 8:
                let from = Int.random(in: 0..<out.count, using: &rng)
                out += out[from..<min(out.count, from + Int.random(in: 3...400, using: &rng))]
            default: out += (0..<Int.random(in: 1...70, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
        }
        return Array(out.prefix(n))
    }

    static func compressed(_ plain: [UInt8]) -> [UInt8] {
        var comp = [UInt8](repeating: 0, count: plain.count + plain.count / 16 + 64)
        let n = plain.withUnsafeBytes { p in comp.withUnsafeMutableBytes { LZF.compress(p, into: $0) } }
        return Array(comp.prefix(n))
    }

    /// (ours, liblzf's): verdict and output.
    static func both(_ input: [UInt8], outCount: Int) -> (Bool, [UInt8], Bool, [UInt8]) {
        var a = [UInt8](repeating: 0, count: outCount)
        var b = [UInt8](repeating: 0, count: outCount)
        let okA = input.withUnsafeBytes { i in a.withUnsafeMutableBytes { LZF.decompress(i, into: $0) } }
        let okB = input.withUnsafeBytes { i in b.withUnsafeMutableBytes { LZF.referenceDecompress(i, into: $0) } }
        // The check without output gives the same verdict.
        let valid = input.withUnsafeBytes { LZF.isValid($0, count: outCount) }
        #expect(valid == okB, "isValid says \(valid), liblzf \(okB)")
        // With slack on both sides (as the decoder's scratch buffers and input windows give): the same
        // verdict and bytes, and nothing decoded from the slack. A roomy output (4 KiB of slack) lets
        // even short outputs take the fast loop, which must refuse what overruns `outCount` all the same.
        let padded = input + Array(repeating: 0x1F, count: 40)
        for slack in [64, 4096] {
            var c = [UInt8](repeating: 0xAA, count: outCount + slack)
            let okC = padded.withUnsafeBytes { i in
                c.withUnsafeMutableBytes { o in
                    LZF.decompress(UnsafeRawBufferPointer(rebasing: i[0..<input.count]), readable: padded.count,
                                   into: UnsafeMutableRawBufferPointer(rebasing: o[0..<outCount]), writable: o.count)
                }
            }
            let sameWithSlack = okC == okA && (!okA || Array(c[0..<outCount]) == a)
            #expect(sameWithSlack, "slack \(slack) changes the result")
        }
        return (okA, a, okB, b)
    }

    @Test func roundTripsWhatLiblzfCompresses() {
        var rng = SplitMix(state: 20261129)
        for size in [1, 2, 3, 7, 8, 9, 31, 32, 33, 64, 100, 255, 4096, 65_536] + (0..<100).map({ _ in Int.random(in: 1...5000, using: &rng) }) {
            let plain = Self.sample(size, &rng)
            let comp = Self.compressed(plain)
            guard !comp.isEmpty else { continue }  // liblzf does not compress incompressible input
            let (ok, out, okRef, outRef) = Self.both(comp, outCount: plain.count)
            #expect(ok && okRef, "size \(size)")
            let same = out == plain, sameRef = outRef == plain  // Bools: a failure prints no megabyte arrays
            #expect(same, "size \(size): ours differs from the input")
            #expect(sameRef, "size \(size): liblzf differs from the input")
        }
    }

    @Test func agreesWithLiblzfOnCorruptInput() {
        var rng = SplitMix(state: 7)
        var rejected = 0
        for round in 0..<800 {
            let plain = Self.sample(Int.random(in: 1...600, using: &rng), &rng)
            var comp = Self.compressed(plain)
            guard !comp.isEmpty else { continue }
            var outCount = plain.count
            switch round % 4 {
            case 0: comp[Int.random(in: 0..<comp.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1: comp.removeLast(Int.random(in: 1...min(4, comp.count), using: &rng))
            case 2: outCount += Int.random(in: -8...8, using: &rng); outCount = max(0, outCount)
            default: comp = (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            let (ok, out, okRef, outRef) = Self.both(comp, outCount: outCount)
            #expect(ok == okRef, "round \(round): ours \(ok), liblzf \(okRef)")
            if ok && okRef {
                let same = out == outRef
                #expect(same, "round \(round): both accept, outputs differ")
            }
            if !okRef { rejected += 1 }
        }
        #expect(rejected > 150)  // the corruptions above really reach the error paths
    }

    @Test func edgeCases() {
        // Empty input fills only an empty output.
        #expect(Self.both([], outCount: 0).0)
        #expect(!Self.both([], outCount: 1).0)
        // A back reference before the start of the output.
        #expect(!Self.both([0x00, 0x41, 0x20, 0x05], outCount: 4).0)
        // A back reference of distance 1 repeats the last byte (a run).
        let (ok, out, _, _) = Self.both([0x00, 0x41, 0xE0, 0x05, 0x00], outCount: 15)
        #expect(ok && out == Array(repeating: 0x41, count: 15))
        // A literal run longer than the input.
        #expect(!Self.both([0x1F, 0x41], outCount: 32).0)
    }
}
