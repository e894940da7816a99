import Synchronization

/// A request to stop an import between keys, made from any thread (`Importer.stop()`). What blocks on the
/// target before keys flow (finding out whether it is a cluster, the first connection's handshake) registers
/// a handler (`whileBlocking`) that ends that wait when the request comes, so a stop is not held up by a
/// target that accepts connections and does not answer.
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)
    private let handlers = Mutex<(next: Int, all: [Int: @Sendable () -> Void])>((0, [:]))

    public init() {}

    public func set() {
        flag.store(true, ordering: .releasing)
        let pending = handlers.withLock { h in
            defer { h.all = [:] }
            return Array(h.all.values)
        }
        for handler in pending { handler() }
    }

    public var isSet: Bool { flag.load(ordering: .relaxed) }

    /// Runs `body`; a stop requested meanwhile (or before) calls `interrupt`, from the requesting thread, to end
    /// what `body` waits on.
    func whileBlocking<T>(interrupt: @escaping @Sendable () -> Void, _ body: () throws -> T) rethrows -> T {
        let id = handlers.withLock { h in
            h.next += 1
            h.all[h.next] = interrupt
            return h.next
        }
        defer { _ = handlers.withLock { $0.all.removeValue(forKey: id) } }
        if isSet { interrupt() }
        return try body()
    }
}

/// Thrown by the visitor at the first key or command after a stop request: decoding ends there, what was
/// decoded before is still sent and acknowledged.
struct ImportStopped: Error, CustomStringConvertible {
    /// Where the first key left unread starts in its input.
    let offset: Int

    var description: String { "stopped on request before the record at byte \(offset)" }
}
