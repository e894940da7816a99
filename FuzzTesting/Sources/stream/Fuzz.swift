// Streams through a hand-wrapped RDB. Byte 0 picks the mode:
//   even: the rest is one node listpack, wrapped in a valid one-node stream (type 15/19/21/26/27 by byte 0);
//   odd:  the rest is a whole stream value (node count, nodes, metadata, groups, PELs, consumers, IDMP).
import RDBKit
import RDBSinks

let streamTypes: [UInt8] = [15, 19, 21, 26, 27]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let mode = data[0]
    let rest = UnsafeRawBufferPointer(start: data + 1, count: count - 1)
    let type = streamTypes[Int(mode >> 1) % streamTypes.count]
    var value: [UInt8]
    if mode & 1 == 0 {
        value = [1]                                         // one node
        value += [16] + [UInt8](repeating: 0, count: 15) + [1]  // node key: master ID 0-1
        value += lengthPrefixed(rest)                      // the node listpack
        value += [1, 0, 1]                                 // length 1, last ID 0-1
        if type != 15 { value += [0, 1, 0, 0, 1] }        // first ID, max deleted ID, entries added
        value += [0]                                       // no groups
        if type >= 26 { value += [0, 0, 0, 0, 0] }        // IDMP: duration, max, producers, added, dups
    } else {
        value = [UInt8](rest)
    }
    let file = value.withUnsafeBytes { wrapValue(type: type, $0, version: type >= 26 ? 13 : 12) }
    file.withUnsafeBytes { f in
        expectRDBError {
            var sink = TouchEverything()
            sink.keyCounter = 1  // decode the only key
            _ = try RDBReader.decode(bytes: f, into: &sink, options: fuzzOptions())
        }
        _ = jsonl(InputBuffer(region: f), options: fuzzOptions(salvage: true, measure: true))
    }
    return 0
}
