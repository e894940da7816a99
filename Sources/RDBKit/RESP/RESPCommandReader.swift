/// Reads commands sent as RESP arrays of bulk strings (`*N\r\n$len\r\narg\r\n...`: an AOF, a replication
/// stream, a client's requests), one event at a time, resuming where a cut-short window stopped: a
/// command of a million arguments arriving in pieces is read once, not again from its start on every
/// refill.
///
/// Call `next(_:commandStart:)` with the window and the window position where the command starts until
/// it returns `.end`; positions it returns are window positions. After `.needMore`, call again with a
/// larger window (the command's bytes moved with it: `commandStart` may change, the resume state is kept
/// relative to it). `reset()` forgets a half-read command.
public struct RESPCommandReader: Sendable {
    /// Largest argument count a command may claim.
    public var maxArguments: Int
    /// Largest argument length.
    public var maxBulkBytes: Int

    /// Argument count of the command being read (0: its header is not read yet).
    public private(set) var argumentCount = 0
    /// Arguments read so far.
    public private(set) var argumentsRead = 0
    /// Position (from the command's start) of the next header to read.
    var resumeAt = 0

    public init(maxArguments: Int = 1 << 20, maxBulkBytes: Int = 512 << 20) {
        self.maxArguments = maxArguments
        self.maxBulkBytes = maxBulkBytes
    }

    public enum Event: Sendable, Equatable {
        /// The header: the command has this many arguments (at least 1, at most `maxArguments`).
        case header(arguments: Int)
        /// The next argument's bytes are `start ..< start + count` of the window.
        case argument(start: Int, count: Int)
        /// The command is complete; its last byte is before this window position.
        case end(Int)
        /// The window must hold at least this many bytes to go on.
        case needMore(atLeast: Int)
    }

    /// Forgets the command being read.
    public mutating func reset() {
        argumentCount = 0
        argumentsRead = 0
        resumeAt = 0
    }

    /// Reads the next part of the command starting at window position `start`.
    public mutating func next(_ w: UnsafeRawBufferPointer, commandStart start: Int) throws(RESPFormatError) -> Event {
        let n = w.count
        let pos = start &+ resumeAt
        if argumentCount > 0 && argumentsRead == argumentCount {
            reset()
            return .end(pos)
        }
        guard let base = w.baseAddress, pos < n else { return .needMore(atLeast: pos &+ 1) }
        if argumentCount == 0 {
            let c = base.load(fromByteOffset: pos, as: UInt8.self)
            if c != 0x2A {
                throw RESPFormatError(.malformed, at: pos, "expected '*' (a command), found \(RESPTokenizer.describe(c))")
            }
            switch RESPTokenizer.readLength(base, n, pos, what: "argument count") {
            case .ok(let argc, let next):
                if argc < 1 {
                    throw RESPFormatError(.malformed, at: pos, "a command must have at least one argument (count is \(argc))")
                }
                if argc > maxArguments {
                    throw RESPFormatError(.tooLarge, at: pos, "a command claims \(argc) arguments (at most \(maxArguments) allowed)")
                }
                argumentCount = argc
                argumentsRead = 0
                resumeAt = next &- start
                return .header(arguments: argc)
            case .needMore:
                return .needMore(atLeast: n &+ 1)
            case .bad(let at, let message):
                throw RESPFormatError(.malformed, at: at, message)
            }
        }
        let c = base.load(fromByteOffset: pos, as: UInt8.self)
        if c != 0x24 {  // '$'
            throw RESPFormatError(.malformed, at: pos,
                                  "expected '$' before argument \(argumentsRead + 1) of \(argumentCount), found \(RESPTokenizer.describe(c))")
        }
        let argument = argumentsRead &+ 1
        switch try RESPTokenizer.readBulk(base, n, pos, maxBytes: maxBulkBytes, allowsNull: false, { "argument \(argument)" }) {
        case .bytes(let q, let len, let end):
            argumentsRead = argument
            resumeAt = end &- start
            return .argument(start: q, count: len)
        case .needMore(let k):
            return .needMore(atLeast: k)
        case .null:
            preconditionFailure("a null bulk string is only read when allowed")
        }
    }
}
