import NIOConcurrencyHelpers
import RDBKit

/// What an import of a live command stream (a replication stream: an RDB, then the source's writes) needs
/// on top of a file import. Set `ImportOptions.stream` to one (a new one per `Importer.run`).
///
/// With it, the AOF side of the import treats the commands as a master's replication stream:
/// `PING` and `REPLCONF` are not forwarded (`REPLCONF GETACK` calls `onGetAck`), `SELECT`s are reported
/// (`onSelect`), and relative expiries (what Redis 6.2 sends: `SET … EX|PX`, `SETEX`, `PSETEX`, `EXPIRE`,
/// `PEXPIRE`, `RESTORE` without `ABSTTL`) become absolute ones, counted from the moment their bytes
/// arrived (`arrivalMillis`), so a replay that lags does not stretch them.
public final class StreamHooks: @unchecked Sendable {
    // Set by the caller before the run; called on the decoding thread.
    /// Unix milliseconds at which the byte at an input offset arrived (nil: now).
    public var arrivalMillis: ((Int) -> Int64)?
    /// `REPLCONF GETACK` read from the stream: the source waits for an acknowledgement.
    public var onGetAck: (() -> Void)?
    /// A `SELECT` of the source's database `db` ends at input offset `end`.
    public var onSelect: ((_ end: Int, _ db: Int) -> Void)?

    // Set by the importer while it runs; the stream calls them on the decoding thread.
    /// Hands the records gathered so far to the connection. The stream calls it before it waits for more
    /// bytes, so a trickle of commands is not held back in a batch.
    public internal(set) var flushPending: (() -> Void)?
    /// The input offset up to which everything read has been acknowledged by the target: the end of the
    /// last acknowledged AOF record, or the decoder's position when nothing is held back or in flight.
    public internal(set) var acknowledgedInputEnd: (() -> Int)?
    /// Why nothing more can be sent (the import stopped); nil while it goes on.
    public internal(set) var stopReason: (() -> String?)?

    // Thread-safe.
    private let windows = NIOLockedValueBox<[InflightWindow]>([])
    private let results = NIOLockedValueBox<(inputEnd: Int?, databases: Set<Int>, lostInFlight: Bool)>((nil, [], false))

    func noteDatabase(_ db: Int) { results.withLockedValue { _ = $0.databases.insert(db) } }

    public init() {}

    func attach(_ w: [InflightWindow]) { windows.withLockedValue { $0 = w } }

    /// Keys and AOF records acknowledged so far, and the furthest input end of those records (any thread).
    public var acknowledged: (inputEnd: Int, keys: Int, commands: Int) {
        let ws = windows.withLockedValue { $0 }
        var t = (inputEnd: 0, keys: 0, commands: 0)
        for w in ws {
            let a = w.acknowledged
            t.inputEnd = max(t.inputEnd, a.inputEnd)
            t.keys += a.keys
            t.commands += a.aof
        }
        return t
    }

    /// After the run: where the acknowledged input ends (nil: the import stopped with records
    /// unacknowledged, see the report).
    public var finalInputEnd: Int? { results.withLockedValue { $0.inputEnd } }
    /// After the run: the target connection was lost while stream commands were in flight, so they may or
    /// may not have run (not idempotent: the import stopped rather than resend them). A new snapshot makes
    /// the target equal to the source again.
    public var lostTargetWithCommandsInFlight: Bool { results.withLockedValue { $0.lostInFlight } }

    /// The target databases written so far (any thread).
    public var databasesWritten: Set<Int> { results.withLockedValue { $0.databases } }

    func finish(inputEnd: Int?, databases: Set<Int>, lostInFlight: Bool) {
        results.withLockedValue { $0 = (inputEnd, $0.databases.union(databases), lostInFlight) }
        flushPending = nil
        acknowledgedInputEnd = nil
        stopReason = nil
    }
}
