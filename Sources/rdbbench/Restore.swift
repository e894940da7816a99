import RDBKit
import RDBSinks

/// Whether this build has a RESTORE writer to benchmark (RDB input only).
let restoreWriterAvailable = true

extension Child {
    static func runRestore(_ path: String, isAOF: Bool, out: OutputBuffer, result: inout ChildResult) throws {
        var sink = Counted(RestoreWriter(out: out))
        try decode(path, isAOF: isAOF, into: &sink)
        result.keys = sink.keys
    }
}
