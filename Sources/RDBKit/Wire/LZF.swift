import CLZF

/// LZF, the compression RDB uses for strings (`0xC3 clen ulen data`).
///
/// Decompression is written here rather than called in liblzf: liblzf copies back references one byte
/// at a time, and on dumps whose values are mostly compressed (quicklist nodes, listpacks, long
/// strings) that loop was more than half of the decoder's time (perf: 56–58% in `lzf_decompress` on
/// the one-big-value and mixed-ttl-streams bench files). This version copies literals 32 bytes and
/// back references 8 or 16 bytes at a time whenever the output has room for the over-copy, runs
/// without per-token bounds checks while far from both ends, and steps byte by byte only near the
/// end of the output or for references closer than eight bytes.
/// It accepts exactly what liblzf accepts (every control byte and bound is checked the same way):
/// `LZFTests` compares the two on random and corrupt inputs, and liblzf stays the reference and the
/// compressor (`compress`, `referenceDecompress`).
public enum LZF {
    /// The largest expansion LZF allows: a 3-byte back reference yields at most 264 bytes.
    public static let maxExpansion = 88

    /// Decompresses `input` into `output`, which must be exactly the declared uncompressed size.
    /// Returns false when the data is corrupt or does not fill `output` exactly.
    @inlinable
    public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        decompress(input, readable: input.count, into: output, writable: output.count)
    }

    /// `decompress` for a caller that can offer slack: `readable` bytes from `input`'s start may be read
    /// (at least `input.count`) and `writable` bytes from `output`'s start may be scribbled on (at least
    /// `output.count`). Only `input` is decoded and only `output` is filled, exactly as without slack;
    /// the slack lets short strings, which never get far from both ends, use the wide copies too.
    @inlinable
    public static func decompress(_ input: UnsafeRawBufferPointer, readable: Int,
                                  into output: UnsafeMutableRawBufferPointer, writable: Int) -> Bool {
        guard let src = input.baseAddress, input.count > 0 else { return output.count == 0 }
        guard let dst = output.baseAddress, output.count > 0 else { return false }
        return decompress(src, input.count, max(readable, input.count), dst, output.count, max(writable, output.count))
    }

    @usableFromInline
    static func decompress(_ src: UnsafeRawPointer, _ inCount: Int, _ inReadable: Int,
                           _ dst: UnsafeMutableRawPointer, _ outCount: Int, _ outWritable: Int) -> Bool {
        var ip = 0
        var op = 0
        // Far from both ends (a token reads at most 35 input bytes; a back reference writes at most
        // 264 bytes plus a 15-byte over-copy) nothing needs a bounds check but the reference's start.
        // The output's end here is the writable one: a token that passes `outCount` only writes into
        // the slack, and is refused all the same (`op` never comes back to `outCount`), so short
        // outputs in a roomy buffer take the fast loop too.
        let inFast = inCount &- 35
        let outFast = outWritable &- 280
        while ip <= inFast && op <= outFast {
            let ctrl = Int(src.load(fromByteOffset: ip, as: UInt8.self))
            ip &+= 1
            if ctrl < 32 {
                copy32(from: src + ip, to: dst + op)
                ip &+= ctrl &+ 1
                op &+= ctrl &+ 1
                continue
            }
            var len = ctrl >> 5
            if len == 7 {
                len &+= Int(src.load(fromByteOffset: ip, as: UInt8.self))
                ip &+= 1
            }
            let distance = ((ctrl & 0x1F) << 8 | Int(src.load(fromByteOffset: ip, as: UInt8.self))) &+ 1
            ip &+= 1
            len &+= 2
            guard distance <= op else { return false }
            copyReference(dst, at: op, distance: distance, count: len)
            op &+= len
        }
        while ip < inCount {
            guard let (len, distance) = token(src, &ip, inCount) else { return false }
            if distance == 0 {
                guard ip &+ len <= inCount, op &+ len <= outCount else { return false }
                if _fastPath(ip &+ 32 <= inReadable && op &+ 32 <= outWritable) {
                    copy32(from: src + ip, to: dst + op)
                } else {
                    (dst + op).copyMemory(from: src + ip, byteCount: len)
                }
                ip &+= len
                op &+= len
            } else {
                guard distance <= op, op &+ len <= outCount else { return false }
                if op &+ len &+ 16 <= outWritable {
                    copyReference(dst, at: op, distance: distance, count: len)
                } else {
                    let from = op &- distance
                    for i in 0..<len {
                        dst.storeBytes(of: dst.load(fromByteOffset: from &+ i, as: UInt8.self), toByteOffset: op &+ i, as: UInt8.self)
                    }
                }
                op &+= len
            }
        }
        return op == outCount
    }

    /// Whether `input` decompresses to exactly `count` bytes, checked as `decompress` checks it (every literal
    /// run within the input, every back reference within the output so far, the output filled exactly) but
    /// without writing the output: for a reader that needs a compressed string's size, not its bytes.
    public static func isValid(_ input: UnsafeRawBufferPointer, count outCount: Int) -> Bool {
        guard let src = input.baseAddress, input.count > 0 else { return outCount == 0 }
        let inCount = input.count
        var ip = 0
        var op = 0
        while ip < inCount {
            guard let (len, distance) = token(src, &ip, inCount) else { return false }
            if distance == 0 {
                ip &+= len
                guard ip <= inCount else { return false }
            } else {
                guard distance <= op else { return false }
            }
            op &+= len
            guard op <= outCount else { return false }
        }
        return op == outCount
    }

    /// Reads the token at `ip` up to its data (advancing `ip`): a literal run of `len` bytes (at most 32,
    /// `distance` 0; its bytes follow) or a back reference (`len` bytes from `distance` back). Nil when the
    /// input ends inside the token's header.
    @inline(__always) @usableFromInline
    static func token(_ src: UnsafeRawPointer, _ ip: inout Int, _ inCount: Int) -> (len: Int, distance: Int)? {
        let ctrl = Int(src.load(fromByteOffset: ip, as: UInt8.self))
        ip &+= 1
        if ctrl < 32 { return (ctrl &+ 1, 0) }
        // Length in the top 3 bits (7: one more length byte), distance in the low 5 bits and the next byte.
        var len = ctrl >> 5
        if len == 7 {
            guard ip < inCount else { return nil }
            len &+= Int(src.load(fromByteOffset: ip, as: UInt8.self))
            ip &+= 1
        }
        guard ip < inCount else { return nil }
        let distance = ((ctrl & 0x1F) << 8 | Int(src.load(fromByteOffset: ip, as: UInt8.self))) &+ 1
        ip &+= 1
        return (len &+ 2, distance)
    }

    /// Copies `count` bytes from `distance` bytes back to `op`, with LZF's byte-by-byte meaning for
    /// overlapping references (a distance shorter than the count repeats the pattern). Wide steps read
    /// only bytes written at least one step earlier; they may write up to 15 bytes past the reference,
    /// which the caller leaves room for and later tokens overwrite.
    @inline(__always)
    static func copyReference(_ dst: UnsafeMutableRawPointer, at op: Int, distance: Int, count len: Int) {
        var o = op
        var f = op &- distance
        let end = op &+ len
        if distance >= 16 {
            repeat {
                (dst + o).storeBytes(of: UnsafeRawPointer(dst + f).loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
                o &+= 16
                f &+= 16
            } while o < end
        } else if distance >= 8 {
            repeat {
                (dst + o).storeBytes(of: UnsafeRawPointer(dst + f).loadUnaligned(as: UInt64.self), as: UInt64.self)
                o &+= 8
                f &+= 8
            } while o < end
        } else if distance == 1 {
            (dst + op).initializeMemory(as: UInt8.self, repeating: dst.load(fromByteOffset: f, as: UInt8.self), count: len)
        } else {
            repeat {
                dst.storeBytes(of: dst.load(fromByteOffset: f, as: UInt8.self), toByteOffset: o, as: UInt8.self)
                o &+= 1
                f &+= 1
            } while o < end
        }
    }

    @inline(__always)
    static func copy32(from s: UnsafeRawPointer, to d: UnsafeMutableRawPointer) {
        let a = s.loadUnaligned(as: SIMD16<UInt8>.self)
        let b = s.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
        d.storeBytes(of: a, as: SIMD16<UInt8>.self)
        d.storeBytes(of: b, toByteOffset: 16, as: SIMD16<UInt8>.self)
    }

    /// liblzf's decompressor: the reference `decompress` is checked against.
    public static func referenceDecompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let inBase = input.baseAddress, input.count > 0 else { return output.count == 0 }
        guard let outBase = output.baseAddress, output.count > 0 else { return false }
        let n = lzf_decompress(inBase, UInt32(input.count), outBase, UInt32(output.count))
        return Int(n) == output.count
    }

    /// Compresses `input` into `output` with liblzf; returns the compressed size, or 0 when it does not fit.
    public static func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        guard let inBase = input.baseAddress, input.count > 0, let outBase = output.baseAddress else { return 0 }
        return Int(lzf_compress(inBase, UInt32(input.count), outBase, UInt32(output.count)))
    }
}
