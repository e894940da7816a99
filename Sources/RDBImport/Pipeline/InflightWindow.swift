import NIOConcurrencyHelpers

/// The commands and bytes sent (or queued) and not yet answered, and the bytes answered but held for a
/// resend: the import's memory bound on the network side, shared by the decoder thread, which waits in
/// `reserve` for room (backpressure: the decoder runs no faster than the server answers), and the event
/// loop, which frees room with `release` as replies arrive.
///
/// NIO's `ConditionLock` guards it. Its value says whether a thread sleeps waiting for a change: the
/// waiter sets 1 as it unlocks and sleeps until a `release` sets 0 (a release in between wakes it at once).
final class InflightWindow: @unchecked Sendable {
    /// What acknowledged (or dropped) records free; negative when a reconnect puts records back.
    struct Release {
        var commands = 0
        var bytes = 0
        var keys = 0
        /// The furthest input end of the AOF records acknowledged (0: none).
        var inputEnd = 0
        /// AOF records (commands, MULTI blocks) applied without an error.
        var aofApplied = 0
        /// The bytes now held acknowledged, out of the window, for a resend (nil: unchanged): the parts of a
        /// key sent in parts until its last part is acknowledged, a cluster segment until its `WAIT` is.
        var held: Int?

        var isEmpty: Bool { commands == 0 && bytes == 0 && keys == 0 && inputEnd == 0 && aofApplied == 0 && held == nil }
    }

    let maxCommands: Int
    let maxBytes: Int
    private let lock = ConditionLock(value: 0)
    // Under `lock`.
    private var commands = 0
    private var bytes = 0
    private var held = 0
    private var ackedKeys = 0
    private var ackedInputEnd = 0
    private var aofApplied = 0
    private var peak = 0
    private var stopped = false
    private var done = false

    init(maxCommands: Int, maxBytes: Int) {
        self.maxCommands = maxCommands
        self.maxBytes = maxBytes
    }

    /// Takes room for `commands` and `bytes`, waiting while the window is full (something in flight and no
    /// room). Returns false, taking nothing, once the import has stopped or ended.
    ///
    /// The acknowledged bytes held for a resend (`Release.held`) take room as those in flight do: the records
    /// after a big key wait for it to be acknowledged rather than fill another window beside it (the import
    /// held both: 31 MB for a 14 MB key and a 16 MiB window). Waiting needs a command in flight, whose answer
    /// frees room or ends the wait: the parts of a RESTORE payload complete none, and go on while nothing else
    /// is in flight however large the key.
    func reserve(commands n: Int, bytes size: Int) -> Bool {
        lock.lock()
        while !stopped && !done && commands > 0 && (commands + n > maxCommands || bytes + held + size > maxBytes) {
            lock.unlock(withValue: 1)
            lock.lock(whenValue: 0)
        }
        guard !stopped && !done else {
            lock.unlock()
            return false
        }
        commands += n
        bytes += size
        peak = max(peak, bytes)
        lock.unlock()
        return true
    }

    /// Frees room (event loop); `stopped`: the import stopped, so waiting for room is over.
    func release(_ r: Release, stopped stop: Bool) {
        lock.lock()
        commands -= r.commands
        bytes -= r.bytes
        ackedKeys += r.keys
        if r.inputEnd > ackedInputEnd { ackedInputEnd = r.inputEnd }
        aofApplied += r.aofApplied
        if let h = r.held { held = h }
        if stop { stopped = true }
        lock.unlock(withValue: 0)
    }

    /// Nothing more will be sent or answered (event loop).
    func end(stopped stop: Bool) {
        lock.lock()
        if stop { stopped = true }
        done = true
        lock.unlock(withValue: 0)
    }

    /// Waits until `end`.
    func waitForEnd() {
        lock.lock()
        while !done {
            lock.unlock(withValue: 1)
            lock.lock(whenValue: 0)
        }
        lock.unlock()
    }

    /// Keys acknowledged so far, commands and bytes in flight.
    var progress: (ackedKeys: Int, commands: Int, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (ackedKeys, commands, bytes)
    }

    /// The furthest input end of the AOF records acknowledged so far (0: none), the commands in flight,
    /// and the keys and AOF records acknowledged.
    var acknowledged: (inputEnd: Int, inFlight: Int, keys: Int, aof: Int, stopped: Bool) {
        lock.lock()
        defer { lock.unlock() }
        return (ackedInputEnd, commands, ackedKeys, aofApplied, stopped)
    }

    /// Whether the import stopped (nothing more is sent).
    var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    /// Whether nothing is in flight, or the import stopped (nothing more will be answered).
    var isSettled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return commands == 0 || stopped || done
    }

    /// Whether a thread sleeps in `reserve` or `waitForEnd` (tests).
    var hasWaiter: Bool { lock.value == 1 }

    /// Largest number of bytes in flight seen (tests check the memory bound with it).
    var peakBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return peak
    }
}
