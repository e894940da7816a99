import RDBKit

/// Records events as short strings, for exact assertions on hand-built inputs.
struct Recorder: RDBVisitor {
    var events: [String] = []
    var action: RDBKeyAction = .decode

    mutating func beginFile(_ h: RDBHeader) throws { events.append("file \(h.family.rawValue) \(h.version)") }
    mutating func auxField(key: RDBString, value: RDBString) throws { events.append("aux \(key.string)=\(value.string)") }
    mutating func beginDatabase(_ db: Int) throws { events.append("db \(db)") }
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        events.append("key \(key.string) \(info.type.encoding) exp=\(info.expireAtMs.map(String.init) ?? "-")")
        return action
    }
    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws { events.append("dropped \(key.string)") }
    mutating func stringValue(_ v: RDBString) throws { events.append("str \(v.isInteger ? "#" : "")\(v.string)") }
    mutating func listElement(_ v: RDBString) throws { events.append("list \(v.isInteger ? "#" : "")\(v.string)") }
    mutating func setMember(_ v: RDBString) throws { events.append("set \(v.isInteger ? "#" : "")\(v.string)") }
    mutating func zsetMember(_ m: RDBString, score: Double) throws { events.append("zset \(m.string) \(score)") }
    mutating func hashField(_ f: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        events.append("hash \(f.string)=\(value.string)\(expireAtMs.map { " ttl=\($0)" } ?? "")")
    }
    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws { events.append("raw \(raw.count)") }
    mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws { events.append("entry \(id) \(fieldCount)") }
    mutating func streamEntryField(_ f: RDBString, value: RDBString) throws { events.append("field \(f.string)=\(value.string)") }
    mutating func streamMetadata(_ m: RDBStreamMetadata) throws {
        events.append("stream length=\(m.length) last=\(m.lastID) first=\(m.firstID) groups=\(m.groupCount)")
    }
    mutating func endKey() throws { events.append("end") }
    mutating func endFile(checksum: RDBChecksumStatus) throws { events.append("eof \(checksum)") }
}

func record(_ bytes: [UInt8], action: RDBKeyAction = .decode, options: RDBDecoderOptions = .init()) throws -> [String] {
    var r = Recorder()
    r.action = action
    _ = try RDBReader.decode(bytes: bytes, into: &r, options: options)
    return r.events
}

/// The error a decode throws, or nil.
func decodeError(_ bytes: [UInt8], options: RDBDecoderOptions = .init()) -> RDBError? {
    var r = Recorder()
    do {
        _ = try RDBReader.decode(bytes: bytes, into: &r, options: options)
        return nil
    } catch let e as RDBError {
        return e
    } catch {
        return RDBError(.io, offset: -1, "unexpected error type \(error)")
    }
}
