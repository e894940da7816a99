import Foundation
import RDBTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The test harness's process start-up: a server it starts holds no descriptor of the test process but its
/// standard streams. (Servers that kept the test process's pipes and Foundation's process-end sockets made a
/// `Spawn.run` of initdb wait for them to exit, and CI hung.)
@Suite("Spawn")
struct SpawnTests {
    @Test func aStartedServerHoldsOnlyItsStandardStreams() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)  // (not close-on-exec: what Foundation's `Pipe` makes)
        defer { close(fds[0]); close(fds[1]) }
        let pid = try Spawn.start("/bin/sleep", ["30"])
        defer { Spawn.stop(pid, signal: SIGKILL) }
        // Read until it holds its standard streams only (for up to 2 s): the program may hold a file of its own for a
        // moment while it starts (a locale file), but a descriptor it was handed stays open.
        var open: [Int32] = []
        for _ in 0..<100 {
            open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int32($0) }.sorted()
            if open == [0, 1, 2] { break }
            usleep(20_000)
        }
        #expect(open == [0, 1, 2], "the child holds \(open)")
    }
}
