// ZipmapReader directly, then as a zipmap hash value.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let blob = UnsafeRawBufferPointer(start: data, count: count)
    var sink = TouchEverything()
    expectRDBError {
        var z = try ZipmapReader(blob, blobOffset: 0)
        var n = 0
        while let (f, v) = try z.next() {
            sink.touch(f)
            sink.touch(v)
            n += 1
            precondition(n <= count)
        }
    }
    lengthPrefixed(blob).withUnsafeBytes { v in
        let file = wrapValue(type: 9, v, version: 3)
        file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
    }
    return 0
}
