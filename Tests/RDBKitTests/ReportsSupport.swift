import Foundation
import RDBKit
import RDBSinks

/// Runs a sink built on an in-memory `OutputBuffer` over `bytes` and returns what it wrote.
func sinkOutput<V: RDBVisitor>(
    _ bytes: [UInt8], options: RDBDecoderOptions = .init(), _ make: (OutputBuffer) -> V
) throws -> [UInt8] {
    let out = OutputBuffer(target: nil)
    var sink = make(out)
    _ = try RDBReader.decode(bytes: bytes, into: &sink, options: options)
    return out.take()
}

/// `sinkOutput` over a fixture (path relative to testdata/), as text.
func sinkText<V: RDBVisitor>(
    _ fixture: String, options: RDBDecoderOptions = .init(), _ make: (OutputBuffer) -> V
) throws -> String {
    String(decoding: try sinkOutput(try Fixtures.bytes(fixture), options: options, make), as: UTF8.self)
}

/// A sink that records what reached it: keys (with their info) and how many value events followed.
struct CountingSink: RDBVisitor {
    var keys: [String] = []
    var infos: [RDBKeyInfo] = []
    var databases: [Int] = []
    var valueEvents = 0
    var endKeys = 0
    var dropped: [String] = []
    var fieldTTLs: [Int64?] = []

    mutating func beginDatabase(_ db: Int) throws { databases.append(db) }
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keys.append(key.string)
        infos.append(info)
        return .decode
    }
    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws { dropped.append(key.string) }
    mutating func stringValue(_ value: RDBString) throws { valueEvents += 1 }
    mutating func listElement(_ element: RDBString) throws { valueEvents += 1 }
    mutating func setMember(_ member: RDBString) throws { valueEvents += 1 }
    mutating func zsetMember(_ member: RDBString, score: Double) throws { valueEvents += 1 }
    mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        valueEvents += 1
        fieldTTLs.append(expireAtMs)
    }
    mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws { valueEvents += 1 }
    mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws { valueEvents += 1 }
    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws { valueEvents += 1 }
    mutating func endKey() throws { endKeys += 1 }
}

/// Hand-built values in the plain (non-compact) encodings, for `RDBBuilder.key(type:_:value:)`.
enum PlainValue {
    static func string(_ s: String) -> [UInt8] { RDBBuilder.string(s) }
    static func string(bytes: [UInt8]) -> [UInt8] { RDBBuilder.string(bytes) }
    /// Type 1 (list) and type 2 (set).
    static func strings(_ items: [String]) -> [UInt8] {
        RDBBuilder.length(UInt64(items.count)) + items.flatMap { RDBBuilder.string($0) }
    }
    /// Type 4.
    static func hash(_ pairs: [(String, String)]) -> [UInt8] {
        RDBBuilder.length(UInt64(pairs.count)) + pairs.flatMap { RDBBuilder.string($0.0) + RDBBuilder.string($0.1) }
    }
    /// Type 5 (binary scores).
    static func zset(_ pairs: [(String, Double)]) -> [UInt8] {
        RDBBuilder.length(UInt64(pairs.count)) + pairs.flatMap { RDBBuilder.string($0.0) + RDBBuilder.le($0.1.bitPattern) }
    }
}

extension RDBBuilder {
    /// A key whose name is arbitrary bytes.
    mutating func key(type: UInt8, bytes k: [UInt8], value: [UInt8], expireMs: Int64? = nil) {
        if let e = expireMs { bytes += [0xFC] + RDBBuilder.le(e) }
        bytes += [type] + RDBBuilder.string(k) + value
    }
}
