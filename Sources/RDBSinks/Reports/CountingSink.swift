import RDBKit

/// Counts keys, elements and AOF commands and does nothing else: the decode-only baseline of the bench
/// executable and the micro-benchmarks, and a cheap way to check that a file decodes.
///
/// Elements are strings, list/set/zset members, hash fields and stream entry fields. Scores stored as
/// text are counted, not parsed (nothing here needs the Double). Inlinable, so that the decoder
/// specialised for it in the caller's module keeps every count in a register.
@frozen
public struct CountingSink: AOFVisitor {
    public var keys = 0
    public var elements = 0
    public var commands = 0

    @inlinable public init() {}

    @inlinable
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keys &+= 1
        return .decode
    }
    @inlinable public mutating func stringValue(_ value: RDBString) throws { elements &+= 1 }
    @inlinable public mutating func listElement(_ element: RDBString) throws { elements &+= 1 }
    @inlinable public mutating func setMember(_ member: RDBString) throws { elements &+= 1 }
    @inlinable public mutating func zsetMember(_ member: RDBString, score: Double) throws { elements &+= 1 }
    @inlinable public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws { elements &+= 1 }
    @inlinable public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws { elements &+= 1 }
    @inlinable public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws { elements &+= 1 }
    @inlinable public mutating func command(_ command: AOFCommand) throws { commands &+= 1 }
}
