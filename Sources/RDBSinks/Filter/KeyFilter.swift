#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// A test on key names.
///
/// `init(regex:)` takes a Swift `Regex` pattern (the syntax of `try Regex(String)`: PCRE/ICU-like) and matches
/// it against the key decoded as UTF-8 (invalid bytes become U+FFFD; integer-encoded keys are their decimal
/// text). The match is a **search**, as grep does: `user:` matches any key containing `user:`; anchor with `^`
/// and `$` to match whole keys. (redis-rdb-tools anchors at the start only, on the raw bytes.)
public struct KeyPattern {
    /// The pattern as given, for messages.
    public let source: String
    let predicate: (String) -> Bool

    /// A Swift Regex; throws when the pattern does not compile.
    @available(macOS 13.0, iOS 16.0, tvOS 16.0, watchOS 9.0, *)
    public init(regex: String) throws {
        let r = try Regex(regex)
        self.source = regex
        self.predicate = { (try? r.firstMatch(in: $0)) != nil }
    }

    /// Any test on the key's text (decoded as UTF-8).
    public init(source: String, _ predicate: @escaping (String) -> Bool) {
        self.source = source
        self.predicate = predicate
    }

    public func matches(_ key: RDBString) -> Bool {
        predicate(key.string)
    }
}

/// Thrown when a size bound is set but the decoder does not measure values.
public struct KeyFilterError: Error, CustomStringConvertible {
    public var description: String
}

/// Which keys to keep.
///
/// A key passes when every set condition holds:
/// - `dbs`: its database is one of these;
/// - `keyPattern` matches its name and `notKeyPattern` does not (see `KeyPattern`);
/// - `types`: its data type is one of these;
/// - `minSize` / `maxSize`: the **serialized size of its value in the file** in bytes (from right after the key
///   name to the end of the record: `RDBKeyInfo.valueSize`), inclusive bounds. The size has to be known when the
///   key starts, before the value is decoded: set `RDBDecoderOptions.measureValues` (`apply(to:)` does it),
///   which makes the decoder step over each value's framing once before reporting it. Without it a filter with
///   a size bound throws `KeyFilterError` at the first key.
/// - `noExpired`: it has no expiry, or its expiry is after `now` (Unix ms): keys with `expireAtMs <= now` are
///   dropped.
///
/// `noTTL` does not drop keys: it removes expiries from the keys that pass (their `expireAtMs` becomes nil) and
/// the TTLs of hash fields.
public struct KeyFilter {
    public var dbs: Set<Int>?
    public var keyPattern: KeyPattern?
    public var notKeyPattern: KeyPattern?
    public var types: Set<RDBKind>?
    public var minSize: Int?
    public var maxSize: Int?
    public var noExpired: Bool
    /// Unix ms, for `noExpired`.
    public var now: Int64
    public var noTTL: Bool

    public init(
        dbs: Set<Int>? = nil, keyPattern: KeyPattern? = nil, notKeyPattern: KeyPattern? = nil,
        types: Set<RDBKind>? = nil, minSize: Int? = nil, maxSize: Int? = nil,
        noExpired: Bool = false, now: Int64 = KeyFilter.currentTimeMs(), noTTL: Bool = false
    ) {
        self.dbs = dbs
        self.keyPattern = keyPattern
        self.notKeyPattern = notKeyPattern
        self.types = types
        self.minSize = minSize
        self.maxSize = maxSize
        self.noExpired = noExpired
        self.now = now
        self.noTTL = noTTL
    }

    /// The current time in Unix ms.
    public static func currentTimeMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Whether a size bound is set (the decoder must then measure values).
    public var needsValueSize: Bool { minSize != nil || maxSize != nil }

    /// Whether no filter is set: every key passes as it is.
    public var passesEverything: Bool {
        dbs == nil && keyPattern == nil && notKeyPattern == nil && types == nil && minSize == nil && maxSize == nil
            && !noExpired && !noTTL
    }

    /// Turns on what the filter needs from the decoder (`measureValues` for size bounds).
    public func apply(to options: inout RDBDecoderOptions) {
        if needsValueSize { options.measureValues = true }
    }

    /// Whether the key passes. Cheap tests first; the patterns (which build a String) last. Inlinable, so
    /// that a visitor chain specialised in the caller's module calls no generic code per key.
    @inlinable
    public func accepts(_ key: RDBString, _ info: RDBKeyInfo) throws -> Bool {
        if let dbs, !dbs.contains(info.db) { return false }
        if let types, !types.contains(info.kind) { return false }
        if noExpired, let e = info.expireAtMs, e <= now { return false }
        if needsValueSize {
            guard let size = info.valueSize else { throw KeyFilter.sizeUnknown() }
            if let minSize, size < minSize { return false }
            if let maxSize, size > maxSize { return false }
        }
        if let keyPattern, !keyPattern.matches(key) { return false }
        if let notKeyPattern, notKeyPattern.matches(key) { return false }
        return true
    }

    @usableFromInline
    static func sizeUnknown() -> KeyFilterError {
        KeyFilterError(description: "a size filter needs each value's size before it is decoded: "
                       + "turn on RDBDecoderOptions.measureValues (KeyFilter.apply(to:))")
    }
}

/// Forwards every event to `inner`, except the keys `filter` rejects: for those it answers `.skip` at
/// `beginKey` without `inner` seeing them, so their values are stepped over without being decompressed or
/// parsed. Keys the server drops on load (`droppedEmptyKey`) are filtered the same way. With `filter.noTTL`,
/// the keys that pass reach `inner` with `expireAtMs == nil` and hash fields without TTLs.
///
/// Database, AUX, module AUX and function records always pass (a database whose keys are all filtered out still
/// reaches `inner` as `beginDatabase`).
public struct FilteringVisitor<Inner: RDBVisitor>: RDBForwardingVisitor {
    public var inner: Inner
    public var filter: KeyFilter {
        didSet { passAll = filter.passesEverything }
    }
    /// No filter is set: keys go straight to `inner` (one test per key instead of the filter's ~40
    /// instructions).
    @usableFromInline var passAll: Bool
    /// Keys rejected so far.
    public internal(set) var skippedKeys = 0

    public init(inner: Inner, filter: KeyFilter) {
        self.inner = inner
        self.filter = filter
        passAll = filter.passesEverything
    }

    @inlinable
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        if passAll { return try inner.beginKey(key, info) }
        guard try filter.accepts(key, info) else { return reject() }
        if filter.noTTL, info.expireAtMs != nil {
            var info = info
            info.expireAtMs = nil
            return try inner.beginKey(key, info)
        }
        return try inner.beginKey(key, info)
    }

    /// Whole string keys pass through when no filter is set (a filter answers at `beginKey`, before a
    /// rejected value is read).
    @inlinable
    public var stringDelivery: RDBStringDelivery { passAll ? inner.stringDelivery : .events }

    @inlinable
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        try inner.stringKey(key, info, value: value, raw: raw)
    }

    @usableFromInline
    mutating func reject() -> RDBKeyAction {
        skippedKeys += 1
        return .skip
    }

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        guard try filter.accepts(key, info) else { return }
        var info = info
        if filter.noTTL { info.expireAtMs = nil }
        try inner.droppedEmptyKey(key, info)
    }

    /// (A hash table's fields, `hashFields(from:)`, have no TTLs: they go to `inner` as they are.)
    @inlinable @inline(__always)
    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        try inner.hashField(field, value: value, expireAtMs: filter.noTTL ? nil : expireAtMs)
    }
}

/// AOF commands pass the database filter (`filter.dbs`); the other key criteria apply to RDB keys only.
/// (Inlinable, like the key events: specialized for `Inner` in the caller's module, a command reaches it with
/// a direct call instead of through the protocol's witness table.)
extension FilteringVisitor: AOFVisitor where Inner: AOFVisitor {
    @inlinable public mutating func beginAOFFile(name: String, kind: AOFFileKind) throws { try inner.beginAOFFile(name: name, kind: kind) }
    @inlinable
    public mutating func command(_ command: AOFCommand) throws {
        if !passAll, let dbs = filter.dbs, !dbs.contains(command.db) { return }
        try inner.command(command)
    }
    @inlinable public mutating func annotation(_ text: RDBString, offset: Int) throws { try inner.annotation(text, offset: offset) }
    @inlinable public mutating func endAOFFile(name: String, kind: AOFFileKind) throws { try inner.endAOFFile(name: name, kind: kind) }
    /// Split only without a database filter (the part does not know the database of its first commands).
    public mutating func makeSplitPart() -> Self? {
        if !passAll && filter.dbs != nil { return nil }
        return inner.makeSplitPart().map { FilteringVisitor(inner: $0, filter: filter) }
    }
    public mutating func mergeSplitPart(_ part: consuming Self, dbAtStart: Int) throws {
        try inner.mergeSplitPart(part.inner, dbAtStart: dbAtStart)
    }
    public mutating func commandBytes(from start: Int, to end: Int) { inner.commandBytes(from: start, to: end) }
}
