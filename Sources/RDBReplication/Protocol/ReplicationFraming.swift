#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits what a master sends a replica into its parts: the replies to the handshake, the `PSYNC` reply,
/// the RDB snapshot without its framing, then the command stream. A pure state machine: bytes in (cut
/// anywhere), events out; no I/O.
///
/// - Before the RDB, a bare `\n` is a keepalive (the master sends one a second while it prepares the
///   snapshot), also between `+FULLRESYNC` and the `$` header.
/// - `$<len>\r\n` then exactly `len` RDB bytes (no trailing CRLF); the stream starts at the next byte.
/// - Diskless: `$EOF:<40 bytes>\r\n`, the RDB, then the same 40 bytes. The mark is found wherever the reads
///   cut it: the last 39 bytes seen are held back until the next bytes show whether the mark is there.
public struct ReplicationFraming: Sendable {
    /// What the bytes fed so far meant.
    public enum Event: Equatable, Sendable {
        /// A reply to a handshake command, as its line (`+OK`, `-NOAUTH …`).
        case reply(String)
        /// A keepalive newline before the snapshot.
        case keepalive
        /// `+FULLRESYNC <replid> <offset>`: a snapshot follows; the stream starts at `offset`.
        case fullResync(replid: String, offset: Int64)
        /// `+CONTINUE [<replid>]`: the stream goes on from the offset asked for (a new replid with psync2).
        case continued(replid: String?)
        /// An error (or unexpected) line instead of the PSYNC reply or the snapshot header.
        case refused(String)
        /// The snapshot starts; its length when the master said it (`$<len>`), nil with an EOF mark.
        case rdbBegin(length: Int?)
        /// The snapshot has ended (`length` bytes).
        case rdbEnd(length: Int)
    }

    /// Where the bytes go (`feed`'s sink gets these and the events).
    public enum Output {
        case event(Event)
        /// Bytes of the snapshot (valid during the call).
        case rdb(UnsafeRawBufferPointer)
        /// Bytes of the command stream (valid during the call).
        case stream(UnsafeRawBufferPointer)
    }

    public struct ProtocolError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    enum State: Sendable, Equatable {
        case replies(Int)
        case psyncReply
        case bulkHeader
        case counted(remaining: Int)
        case marked
        case stream
        case failed
    }

    static let markSize = 40
    static let maxLine = 4096

    var state: State
    var line: [UInt8] = []
    /// The EOF mark (diskless framing).
    var mark: [UInt8] = []
    /// Bytes of the snapshot not delivered yet because they may be the start of the mark (at most 39).
    var held: [UInt8] = []
    /// Snapshot bytes seen (mark excluded).
    public private(set) var rdbLength = 0

    /// Starts before the replies of `replies` handshake commands, then expects the PSYNC reply.
    public init(handshakeReplies replies: Int) {
        state = replies > 0 ? .replies(replies) : .psyncReply
    }

    /// Whether the command stream has started (`+CONTINUE`, or after the snapshot).
    public var isStreaming: Bool { state == .stream }
    /// Whether the snapshot is being received.
    public var inSnapshot: Bool {
        switch state {
        case .counted, .marked: true
        default: false
        }
    }

    /// Consumes `bytes`, calling `sink` for each part in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ sink: (Output) throws -> Void) throws {
        var p = 0
        let n = bytes.count
        while p < n {
            switch state {
            case .failed:
                return
            case .stream:
                try sink(.stream(UnsafeRawBufferPointer(rebasing: bytes[p..<n])))
                return
            case .counted(let remaining):
                let k = min(remaining, n - p)
                if k > 0 { try sink(.rdb(UnsafeRawBufferPointer(rebasing: bytes[p..<(p + k)]))) }
                rdbLength += k
                p += k
                if remaining - k == 0 {
                    state = .stream
                    try sink(.event(.rdbEnd(length: rdbLength)))
                } else {
                    state = .counted(remaining: remaining - k)
                }
            case .marked:
                p = try feedMarked(bytes, from: p, sink)
            case .replies, .psyncReply, .bulkHeader:
                guard let nl = memchr(bytes.baseAddress! + p, 0x0A, n - p) else {
                    try appendLine(UnsafeRawBufferPointer(rebasing: bytes[p..<n]))
                    return
                }
                let end = UnsafeRawPointer(nl) - bytes.baseAddress!
                try appendLine(UnsafeRawBufferPointer(rebasing: bytes[p..<end]))
                p = end + 1
                var text = line
                line.removeAll(keepingCapacity: true)
                if text.last == 0x0D { text.removeLast() }
                try handleLine(text, sink)
            }
        }
    }

    mutating func appendLine(_ b: UnsafeRawBufferPointer) throws {
        if line.count + b.count > Self.maxLine {
            state = .failed
            throw ProtocolError(description: "the master sent a line longer than \(Self.maxLine) bytes before the snapshot (not the replication protocol)")
        }
        line.append(contentsOf: b)
    }

    mutating func handleLine(_ text: [UInt8], _ sink: (Output) throws -> Void) throws {
        let s = String(decoding: text, as: UTF8.self)
        switch state {
        case .replies(let k):
            if text.isEmpty { return try sink(.event(.keepalive)) }
            state = k > 1 ? .replies(k - 1) : .psyncReply
            try sink(.event(.reply(s)))
        case .psyncReply:
            if text.isEmpty { return try sink(.event(.keepalive)) }
            let parts = s.split(separator: " ", omittingEmptySubsequences: true)
            if parts.first == "+FULLRESYNC" {
                guard parts.count == 3, parts[1].utf8.count == 40, let off = Int64(parts[2]), off >= 0 else {
                    state = .failed
                    throw ProtocolError(description: "malformed PSYNC reply '\(s.prefix(200))' (expected +FULLRESYNC <40-character replid> <offset>)")
                }
                state = .bulkHeader
                try sink(.event(.fullResync(replid: String(parts[1]), offset: off)))
            } else if parts.first == "+CONTINUE" {
                state = .stream
                try sink(.event(.continued(replid: parts.count > 1 ? String(parts[1]) : nil)))
            } else {
                state = .failed
                try sink(.event(.refused(s)))
            }
        case .bulkHeader:
            if text.isEmpty { return try sink(.event(.keepalive)) }
            if text.first == UInt8(ascii: "$") {
                let body = text.dropFirst()
                if body.starts(with: Array("EOF:".utf8)) {
                    let m = Array(body.dropFirst(4))
                    guard m.count == Self.markSize else {
                        state = .failed
                        throw ProtocolError(description: "diskless snapshot header with a \(m.count)-byte EOF mark (expected \(Self.markSize))")
                    }
                    mark = m
                    state = .marked
                    try sink(.event(.rdbBegin(length: nil)))
                    return
                }
                guard let len = Int(String(decoding: body, as: UTF8.self)), len >= 0 else {
                    state = .failed
                    throw ProtocolError(description: "malformed snapshot header '\(s.prefix(200))'")
                }
                try sink(.event(.rdbBegin(length: len)))
                if len == 0 {
                    state = .stream
                    try sink(.event(.rdbEnd(length: 0)))
                } else {
                    state = .counted(remaining: len)
                }
            } else {
                state = .failed
                try sink(.event(.refused(s)))
            }
        default:
            break
        }
    }

    /// Diskless snapshot bytes from `p`: everything but the last 39 bytes seen goes out, unless the mark is
    /// found (then the snapshot ends before it and the stream starts after it). Returns where it stopped.
    mutating func feedMarked(_ bytes: UnsafeRawBufferPointer, from p: Int, _ sink: (Output) throws -> Void) throws -> Int {
        let n = bytes.count
        let m = Self.markSize
        // The mark across the held bytes and the new ones: look in held + the first m-1 new bytes.
        if !held.isEmpty {
            let take = min(m - 1, n - p)
            var joined = held
            joined.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[p..<(p + take)]))
            if let at = Self.find(mark, in: joined), at < held.count {
                // The mark starts inside the held bytes.
                if at > 0 { try joined.withUnsafeBytes { try sink(.rdb(UnsafeRawBufferPointer(rebasing: $0[0..<at]))) } }
                rdbLength += at
                let consumed = at + m - held.count
                held.removeAll()
                state = .stream
                try sink(.event(.rdbEnd(length: rdbLength)))
                return p + consumed
            }
        }
        // The mark inside the new bytes.
        let region = UnsafeRawBufferPointer(rebasing: bytes[p..<n])
        if let at = Self.find(mark, in: region) {
            if !held.isEmpty {
                try held.withUnsafeBytes { try sink(.rdb($0)) }
                rdbLength += held.count
                held.removeAll()
            }
            if at > 0 { try sink(.rdb(UnsafeRawBufferPointer(rebasing: region[0..<at]))) }
            rdbLength += at
            state = .stream
            try sink(.event(.rdbEnd(length: rdbLength)))
            return p + at + m
        }
        // No mark: keep the last m-1 bytes of held + new.
        let total = held.count + region.count
        let keep = min(m - 1, total)
        let release = total - keep
        if release > 0 {
            let fromHeld = min(release, held.count)
            if fromHeld > 0 {
                try held.withUnsafeBytes { try sink(.rdb(UnsafeRawBufferPointer(rebasing: $0[0..<fromHeld]))) }
            }
            let fromNew = release - fromHeld
            if fromNew > 0 { try sink(.rdb(UnsafeRawBufferPointer(rebasing: region[0..<fromNew]))) }
            rdbLength += release
            held.removeFirst(fromHeld)
            held.append(contentsOf: UnsafeRawBufferPointer(rebasing: region[fromNew...]))
        } else {
            held.append(contentsOf: region)
        }
        return n
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        hay.withUnsafeBytes { find(needle, in: $0) }
    }

    static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer) -> Int? {
        guard hay.count >= needle.count, let base = hay.baseAddress else { return nil }
        return needle.withUnsafeBytes { nb -> Int? in
            let first = Int32(nb[0])
            let last = hay.count - nb.count
            var i = 0
            while i <= last {
                guard let p = memchr(base + i, first, last - i + 1) else { return nil }
                let at = UnsafeRawPointer(p) - base
                if memcmp(base + at, nb.baseAddress!, nb.count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }
}
