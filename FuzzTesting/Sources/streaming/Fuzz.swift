// The streaming path: an InputBuffer refilled from a ChunkedArrayStream with small chunks (the record
// is first stepped over to make sure it is whole, then decoded). Differential: a streamed decode must
// succeed exactly when the mapped decode succeeds, with byte-identical JSONL.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    let array = [UInt8](bytes)
    let options = fuzzOptions()
    let mapped = jsonl(InputBuffer(region: bytes), options: options)
    let chunk = 1 + count % 13
    let streamed = jsonl(InputBuffer(stream: ChunkedArrayStream(array, chunk: chunk), chunkSize: 64), options: options)
    if (mapped == nil) != (streamed == nil) {
        fatalError("mapped \(mapped == nil ? "failed" : "succeeded") but streamed (chunk \(chunk)) \(streamed == nil ? "failed" : "succeeded")")
    }
    if let mapped, let streamed, mapped != streamed {
        fatalError("mapped and streamed (chunk \(chunk)) JSONL differ")
    }
    // A small record limit must end in .limitExceeded or a decode, never a trap.
    var small = options
    small.maxRecordBytes = 256
    expectRDBError {
        var sink = TouchEverything()
        _ = try RDBReader.decode(InputBuffer(stream: ChunkedArrayStream(array, chunk: 3), chunkSize: 16), into: &sink, options: small)
    }
    return 0
}
