import RDBKit

/// AOF input for the JSONL writer: the keys of an RDB preamble are written as usual (one key object per
/// line), then one line per command: `{"db":N,"command":[arg0, arg1, ...]}`, arguments encoded like
/// every other byte string of this writer (`binary` mode). Annotations (`#TS:` lines) are not written.
extension JSONLWriter: AOFVisitor {
    public mutating func command(_ command: AOFCommand) throws {
        out.append("{\"db\":")
        out.append(decimal: command.db)
        out.append(",\"command\":[")
        let args = command.args
        for i in 0..<args.count {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.appendJSONString(args.bytes(i), mode: binary)
        }
        out.append("]}\n")
        out.commit()
        try out.flushIfNeeded()
    }

    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws {
        try out.flush()
    }
}
