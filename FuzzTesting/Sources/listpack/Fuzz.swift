// ListpackReader directly over the blob, with the helpers the decoder uses (nextRequired, nextInteger),
// then the same blob as a listpack hash/zset/set value and as a quicklist-2 node.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let blob = UnsafeRawBufferPointer(start: data, count: count)
    var sink = TouchEverything()
    expectRDBError {
        var lp = try ListpackReader(blob, blobOffset: 0)
        _ = lp.isEmpty
        var n = 0
        while let e = try lp.next() {
            sink.touch(e)
            n += 1
            precondition(n <= count, "listpack walk did not advance")
        }
    }
    expectRDBError {
        var lp = try ListpackReader(blob, blobOffset: 0)
        while true {
            _ = try lp.nextInteger("an integer")
            _ = try lp.nextRequired("an element")
        }
    }
    let value = lengthPrefixed(blob)
    for type: UInt8 in [16, 17, 20, 23] {
        let file = value.withUnsafeBytes { wrapValue(type: type, $0) }
        file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
    }
    let quicklist: [UInt8] = [1, 2] + value  // one PACKED node
    quicklist.withUnsafeBytes { v in
        let file = wrapValue(type: 18, v)
        file.withUnsafeBytes { _ = jsonl(InputBuffer(region: $0), options: fuzzOptions()) }
    }
    return 0
}
