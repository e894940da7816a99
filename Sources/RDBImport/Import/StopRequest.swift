import Synchronization

/// A request to stop an import between keys, made from any thread (`Importer.stop()`).
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func set() { flag.store(true, ordering: .releasing) }

    public var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// Thrown by the visitor at the first key or command after a stop request: decoding ends there, what was
/// decoded before is still sent and acknowledged.
struct ImportStopped: Error, CustomStringConvertible {
    /// Where the first key left unread starts in its input.
    let offset: Int

    var description: String { "stopped on request before the record at byte \(offset)" }
}
