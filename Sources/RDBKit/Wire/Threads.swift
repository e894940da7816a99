#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a joinable thread running `body` (which keeps what it captures alive until it returns).
/// Returns nil when no thread can be created; callers then do the work inline.
public func startThread(_ body: @escaping () -> Void) -> pthread_t? {
    final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Body(body))
    let rc = pthread_create(&thread, nil, { arg in
        Unmanaged<Body>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, context.toOpaque())
    if rc != 0 {
        context.release()
        return nil
    }
    return thread
}
