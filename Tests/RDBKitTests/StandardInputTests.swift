import Testing
import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// Standard input redirected from a regular file is mapped like the file; a pipe is streamed.
@Suite(.serialized) struct StandardInputTests {
    @Test func fromAFileIsMapped() throws {
        let tmp = try TempDir()
        let bytes = try Fixtures.bytes("servers/redis-7.0/mixed.rdb")
        let path = try tmp.write("dump.rdb", bytes)
        let mapped = try bytes.withUnsafeBytes { try StreamingTests().jsonl(InputBuffer(region: $0)) }
        let saved = dup(0)
        defer {
            dup2(saved, 0)
            close(saved)
        }
        let fd = open(path, O_RDONLY)
        dup2(fd, 0)
        close(fd)
        let input = try InputBuffer.open(path: "-")
        #expect(!input.isStreaming && input.name == "-")
        #expect(try StreamingTests().jsonl(input) == mapped)
        // Not at its start (something read from it before): streamed from where it is.
        lseek(0, 9, SEEK_SET)
        let rest = try InputBuffer.open(path: "-")
        #expect(rest.isStreaming)
        #expect(try rest.fill(atLeast: bytes.count - 9) && Array(rest.window) == Array(bytes[9...]))
        // A pipe is streamed.
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        _ = bytes.withUnsafeBytes { write(p[1], $0.baseAddress, min(4096, $0.count)) }
        close(p[1])
        dup2(p[0], 0)
        close(p[0])
        let piped = try InputBuffer.open(path: "-")
        #expect(piped.isStreaming)
        #expect(try piped.fill(atLeast: 4096) && Array(piped.window) == Array(bytes[0..<4096]))
    }
}
