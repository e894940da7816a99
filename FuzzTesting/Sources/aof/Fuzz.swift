// The AOF tokenizer (RESP multibulk, inline commands, annotations, MULTI/EXEC, RDB preamble) over a
// mapped input, then over a stream in small chunks; both must agree, and the JSONL writer must cope.
import RDBKit
import RDBSinks

func aofRun(_ input: InputBuffer, strict: Bool) -> (ok: Bool, commands: Int, sum: UInt64) {
    var options = AOFOptions()
    options.strict = strict
    options.rdb = fuzzOptions()
    var sink = TouchEverything()
    sink.keyCounter = 1
    do {
        let s = try AOFReader.decode(input, name: "fuzz", into: &sink, options: options)
        return (true, s.commands, sink.sum)
    } catch let e as RDBError {
        _ = e.description
        return (false, 0, 0)
    } catch {
        fatalError("non-RDBError thrown: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    let array = [UInt8](bytes)
    for strict in [false, true] {
        let mapped = aofRun(InputBuffer(region: bytes, name: "fuzz"), strict: strict)
        let chunk = 1 + count % 11
        let streamed = aofRun(InputBuffer(stream: ChunkedArrayStream(array, chunk: chunk), chunkSize: 64, name: "fuzz"), strict: strict)
        if mapped.ok != streamed.ok || mapped.commands != streamed.commands || mapped.sum != streamed.sum {
            fatalError("AOF mapped \(mapped) and streamed (chunk \(chunk)) \(streamed) differ (strict \(strict))")
        }
    }
    let out = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var w = JSONLWriter(out: out, binary: .escape)
    var options = AOFOptions()
    options.rdb = fuzzOptions()
    expectRDBError { _ = try AOFReader.decode(InputBuffer(region: bytes, name: "fuzz"), name: "fuzz", into: &w, options: options) }
    return 0
}
