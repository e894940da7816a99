import Foundation
import RDBKit
import RDBSinks
import Testing

/// Counts RDB keys and AOF commands.
struct KindCounter: AOFVisitor {
    var keys = 0
    var commands: [String] = []
    var files: [String] = []
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keys += 1
        return .decode
    }
    mutating func beginAOFFile(name: String, kind: AOFFileKind) throws { files.append(name) }
    mutating func command(_ command: AOFCommand) throws { commands.append(command.name.string) }
}

/// `InputKind` / `OpenedInput` tell inputs apart by content, and `DecodeDriver` reads each with its reader.
@Suite("Input kinds and the decode driver")
struct InputKindTests {
    static let folder = Fixtures.url("servers/redis-7.0/aof/multipart-rdb-base").path
    static let rdb = Fixtures.url("servers/redis-7.0/mixed.rdb").path

    func zstd(_ path: String, into dir: TempDir, as name: String) throws -> String {
        let out = dir.path + "/" + name
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/zstd")
        p.arguments = ["-q", "-f", "-o", out, path]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return out
    }

    @Test func kindsByContent() throws {
        let tmp = try TempDir()
        // Names lie on purpose: only content counts.
        let aof = try tmp.write("dump.rdb", "*1\r\n$4\r\nPING\r\n")
        let empty = try tmp.write("empty", [])
        let manifest = try tmp.write("x.aof", "file appendonly.aof.1.incr.aof seq 1 type i\n")
        let cases: [(String, InputKind)] = [
            (Self.rdb, .rdb), (Self.folder, .aofDirectory), (Self.folder + "/appendonly.aof.manifest", .aofManifest),
            (Self.folder + "/appendonly.aof.2.incr.aof", .aof), (Self.folder + "/appendonly.aof.2.base.rdb", .rdb),
            (aof, .aof), (empty, .aof), (manifest, .aofManifest),
            (try zstd(Self.rdb, into: tmp, as: "a.zst"), .rdb),
            (try zstd(Self.folder + "/appendonly.aof.manifest", into: tmp, as: "m.zst"), .aofManifest),
            (try zstd(aof, into: tmp, as: "c.zst"), .aof),
        ]
        for (path, kind) in cases {
            #expect(try InputKind.detect(path: path) == kind, "\(path)")
        }
        let compressed = try OpenedInput.open(path: tmp.path + "/a.zst", limit: 1 << 30)
        #expect(compressed.isStreaming && compressed.fileSize != nil)
        let streamed = InputBuffer(stream: ChunkedArrayStream(try Fixtures.bytes("servers/redis-7.0/mixed.rdb"), chunk: 3), chunkSize: 64)
        #expect(try InputKind.detect(streamed) == .rdb && streamed.offset == 0)
        #expect(throws: RDBError.self) { try InputKind.detect(path: tmp.path + "/missing") }
    }

    @Test func driverReadsEachKind() throws {
        let tmp = try TempDir()
        var plain = KindCounter()
        let driver = DecodeDriver()
        try driver.decode(paths: [Self.rdb], into: &plain)
        #expect(plain.keys > 0 && plain.commands.isEmpty && plain.files.isEmpty)  // an RDB: the RDB reader alone
        var compressed = KindCounter()
        try driver.decode(paths: [try zstd(Self.rdb, into: tmp, as: "a.zst")], into: &compressed)
        #expect(compressed.keys == plain.keys && compressed.files.isEmpty)
        // An RDB with commands after it (an AOF with a preamble): both, the commands from where the RDB ends.
        let withTail = try tmp.write("preamble.aof", try Fixtures.bytes("servers/redis-7.0/mixed.rdb") + Array("*1\r\n$4\r\nPING\r\n".utf8))
        var both = KindCounter()
        try driver.decode(paths: [withTail], into: &both)
        #expect(both.keys == plain.keys && both.commands == ["PING"])
        var folder = KindCounter()
        try driver.decode(paths: [Self.folder], into: &folder)
        #expect(folder.files.count == 2 && folder.keys > 0 && !folder.commands.isEmpty)
        // A reader of RDB only: an AOF is refused by kind, bytes after an RDB are recorded.
        #expect(throws: DecodeDriver.WrongKind.self) { try driver.decodeRDB(paths: [Self.folder], into: &plain) }
        try driver.decodeRDB(paths: [withTail], into: &plain)
        #expect(driver.log.trailing.map(\.file) == [withTail])
        #expect(driver.log.reportLines().first?.contains("were not read") == true)
    }

    @Test func progressAndSalvageWrapTheRDB() throws {
        var driver = DecodeDriver()
        var lines: [String] = []
        driver.progress = { lines.append($0) }
        var v = KindCounter()
        try driver.decode(paths: [Self.rdb], into: &v)
        #expect(lines.last?.hasSuffix("\n") == true && lines.last?.contains("\(v.keys) keys") == true)
        let corrupt = Fixtures.url("corpus/redis/corrupt_ziplist.rdb").path
        driver.rdb.salvage = true
        var s = KindCounter()
        try driver.decodeRDB(paths: [corrupt], into: &s)
        #expect(driver.log.lostKeys.count == 1 && !driver.log.isClean)
    }
}
