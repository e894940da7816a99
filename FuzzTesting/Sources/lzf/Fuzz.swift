// LZF through the decoder's string path (RDBParser.readString on 0xC3 clen ulen data), strings read back
// to back so the scratch buffers are reused, plus the decompressor directly against liblzf's (same verdict, same bytes) and a round trip.
import Glibc
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    var parser = RDBParser(options: fuzzOptions())
    var sink = TouchEverything()
    var c = ByteCursor(bytes)
    var slot = 0
    expectRDBError {
        while !c.isAtEnd {
            let s = try parser.readString(&c, slot: 1 + slot % 4)
            sink.touch(s)
            slot += 1
        }
    }
    // Direct: the first two bytes give an output size (at most 64 KiB).
    if count >= 2 {
        let outSize = Int(data[0]) << 8 | Int(data[1])
        let input = UnsafeRawBufferPointer(start: data + 2, count: count - 2)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(outSize, 1), alignment: 1)
        defer { out.deallocate() }
        let ref = UnsafeMutableRawBufferPointer.allocate(byteCount: max(outSize, 1), alignment: 1)
        defer { ref.deallocate() }
        let ok = LZF.decompress(input, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<outSize]))
        let okRef = LZF.referenceDecompress(input, into: UnsafeMutableRawBufferPointer(rebasing: ref[0..<outSize]))
        precondition(ok == okRef, "LZF: ours says \(ok), liblzf says \(okRef)")
        if ok {
            precondition(memcmp(out.baseAddress!, ref.baseAddress!, outSize) == 0, "LZF: output differs from liblzf's")
            sink.touch(UnsafeRawBufferPointer(rebasing: out[0..<outSize]))
        }
    }
    // Round trip: what liblzf compresses, the decoder's string path must give back.
    if count > 4 {
        let cap = count + count / 16 + 64
        var comp = [UInt8](repeating: 0, count: cap)
        let clen = comp.withUnsafeMutableBytes { LZF.compress(bytes, into: $0) }
        if clen > 0 {
            var enc: [UInt8] = [0xC3]
            enc += [0x80] + withUnsafeBytes(of: UInt32(clen).bigEndian, Array.init)
            enc += [0x80] + withUnsafeBytes(of: UInt32(count).bigEndian, Array.init)
            enc += comp[0..<clen]
            enc.withUnsafeBytes { e in
                var c2 = ByteCursor(e)
                do {
                    let s = try parser.readString(&c2, slot: 1)
                    precondition(!s.isInteger && s.bytes.elementsEqual(bytes), "LZF round trip differs")
                } catch {
                    fatalError("LZF round trip failed: \(error)")
                }
            }
        }
    }
    return 0
}
