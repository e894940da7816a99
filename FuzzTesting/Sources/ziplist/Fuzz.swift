// ZiplistReader directly, then the blob as a ziplist list/zset/hash value and a quicklist node.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let blob = UnsafeRawBufferPointer(start: data, count: count)
    var sink = TouchEverything()
    expectRDBError {
        var z = try ZiplistReader(blob, blobOffset: 0)
        _ = z.isEmpty
        var n = 0
        while let e = try z.next() {
            sink.touch(e)
            n += 1
            precondition(n <= count, "ziplist walk did not advance")
        }
    }
    let value = lengthPrefixed(blob)
    for type: UInt8 in [10, 12, 13] {
        value.withUnsafeBytes { v in
            let file = wrapValue(type: type, v, version: 6)
            file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
        }
    }
    let quicklist: [UInt8] = [1] + value
    quicklist.withUnsafeBytes { v in
        let file = wrapValue(type: 14, v, version: 9)
        file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
    }
    return 0
}
