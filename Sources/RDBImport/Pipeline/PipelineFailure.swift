import RedisWire

/// Why the network side of an import stopped. Its description is the report's `failure` line; none
/// contains a secret.
public enum PipelineFailure: Error, Sendable, CustomStringConvertible {
    /// The target could not be reached, closed the first connection, refused the login or a handshake
    /// step, or sent something that is not RESP.
    case connection(ConnectionError)
    /// The connection was lost and could not be re-established in time (the last error says why).
    case connectionLost(address: String, seconds: Int, lastError: String)
    /// A write was refused in a way every later write would be too (`OOM`, `READONLY`, `MOVED`, …).
    case writesRefused(RedisServerError)
    /// A `SELECT` between keys was refused.
    case selectFailed(db: Int, RedisServerError)
    /// The connection was lost while AOF commands (not idempotent) were unacknowledged.
    case aofUnacknowledged(file: String, offset: Int)
    /// A reply arrived when none was due.
    case unexpectedReply(RESPReply)

    public var description: String {
        switch self {
        case .connection(let e):
            return e.description
        case .connectionLost(let address, let seconds, let lastError):
            return "the connection to \(address) was lost and could not be re-established within \(seconds) s (last error: \(lastError))"
        case .writesRefused(let e) where e.isCluster:
            return "the target is a Redis Cluster (\(e)): cluster targets are not supported yet; import into each primary with the keys of its slots"
        case .writesRefused(let e):
            return "the target refused writes: \(e)"
        case .selectFailed(let db, let e):
            return "SELECT \(db) failed on the target: \(e)"
        case .aofUnacknowledged(let file, let offset):
            return "the connection was lost while AOF commands were unacknowledged, from \(file) offset \(offset) on; they may or may not have been applied and cannot be replayed safely (not idempotent)"
        case .unexpectedReply(let reply):
            return "unexpected reply from the target: \(reply)"
        }
    }

    /// The server's error behind the failure, if one is.
    public var serverError: RedisServerError? {
        switch self {
        case .connection(let e): e.serverError
        case .writesRefused(let e), .selectFailed(_, let e): e
        default: nil
        }
    }
}
