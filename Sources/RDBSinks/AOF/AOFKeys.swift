import RDBKit

/// Lists the keys an AOF touches: the keys of its RDB preambles and the key arguments of its commands,
/// where the command's key positions are known (`AOFKeySpec`). Each (db, key) is listed once, in the
/// order first seen, with the number of commands that touch it.
///
/// Commands with unknown key positions are counted in `unknownCommands` by name. Call `writeJSONL(to:)`
/// at the end: one line per key, `{"db":N,"key":K,"commands":N,"preamble":true|false}`.
public struct AOFKeys: AOFVisitor {
    public struct Key: Hashable, Sendable {
        public var db: Int
        public var key: [UInt8]
    }

    public struct Usage: Sendable {
        public var key: Key
        /// Commands that name the key.
        public var commands: Int
        /// Whether an RDB preamble / RDB BASE holds the key.
        public var inPreamble: Bool
    }

    public var binary: BinaryMode
    public private(set) var keys: [Usage] = []
    public private(set) var unknownCommands: [String: Int] = [:]
    var index: [Key: Int] = [:]

    public init(binary: BinaryMode = .escape) {
        self.binary = binary
    }

    mutating func touch(_ db: Int, _ key: RDBString, preamble: Bool) {
        let k = Key(db: db, key: key.array)
        if let i = index[k] {
            if preamble { keys[i].inPreamble = true } else { keys[i].commands += 1 }
        } else {
            index[k] = keys.count
            keys.append(Usage(key: k, commands: preamble ? 0 : 1, inPreamble: preamble))
        }
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        touch(info.db, key, preamble: true)
        return .skip
    }

    public mutating func command(_ command: AOFCommand) throws {
        let known = command.forEachKey { k in touch(command.db, k, preamble: false) }
        if !known { unknownCommands[command.upperName, default: 0] += 1 }
    }

    public func writeJSONL(to out: OutputBuffer) throws {
        for u in keys {
            out.append("{\"db\":")
            out.append(decimal: u.key.db)
            out.append(",\"key\":")
            u.key.key.withUnsafeBytes { out.appendJSONString($0, mode: binary) }
            out.append(",\"commands\":")
            out.append(decimal: u.commands)
            out.append(u.inPreamble ? ",\"preamble\":true}\n" : ",\"preamble\":false}\n")
            out.commit()
            try out.flushIfNeeded()
        }
        try out.flush()
    }
}
