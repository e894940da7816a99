// Whole RDB files through RDBReader (mapped path): every byte of every event is touched, then the same
// input goes through the JSONL writer in salvage mode with measured values.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    expectRDBError {
        var sink = TouchEverything()
        _ = try RDBReader.decode(bytes: bytes, into: &sink, options: fuzzOptions())
    }
    _ = jsonl(InputBuffer(region: bytes), options: fuzzOptions(salvage: true, measure: true))
    return 0
}
