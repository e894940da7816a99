// The multi-part AOF manifest parser.
import RDBKit
import RDBSinks

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    _ = AOFManifest.looksLikeManifest(bytes)
    var options = AOFOptions()
    options.maxManifestFiles = 50
    expectRDBError {
        let m = try AOFManifest.parse(bytes, name: "fuzz", options: options)
        precondition(m.entries.count <= 50, "manifest file limit not enforced")
        precondition(m.loadOrder.count <= m.entries.count)
        for e in m.entries { precondition(!e.name.isEmpty && e.line >= 1) }
    }
    return 0
}
