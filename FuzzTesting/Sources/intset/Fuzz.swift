// IntsetReader directly, then as an intset set value.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let blob = UnsafeRawBufferPointer(start: data, count: count)
    var sink = TouchEverything()
    expectRDBError {
        var s = try IntsetReader(blob, blobOffset: 0)
        var n = 0
        while let i = try s.next() {
            sink.touch(RDBString(integer: i))
            n += 1
            precondition(n <= s.count)
        }
    }
    lengthPrefixed(blob).withUnsafeBytes { v in
        let file = wrapValue(type: 11, v)
        file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
    }
    return 0
}
