import CLZF

/// LZF decompression through liblzf, into a caller-provided buffer.
public enum LZF {
    /// The largest expansion LZF allows: a 3-byte back reference yields at most 264 bytes.
    public static let maxExpansion = 88

    /// Decompresses `input` into `output`, which must be exactly the declared uncompressed size.
    /// Returns false when the data is corrupt or does not fill `output` exactly.
    public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let inBase = input.baseAddress, input.count > 0 else { return output.count == 0 }
        guard let outBase = output.baseAddress, output.count > 0 else { return false }
        let n = lzf_decompress(inBase, UInt32(input.count), outBase, UInt32(output.count))
        return Int(n) == output.count
    }

    /// Compresses `input` into `output`; returns the compressed size, or 0 when it does not fit.
    public static func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        guard let inBase = input.baseAddress, input.count > 0, let outBase = output.baseAddress else { return 0 }
        return Int(lzf_compress(inBase, UInt32(input.count), outBase, UInt32(output.count)))
    }
}
