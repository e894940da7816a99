import Foundation
import Testing
import RDBKit
import RDBSinks

/// Manifest parsing (good and broken) and reading multi-part AOFs from a folder, a manifest or a file.
@Suite struct AOFManifestTests {
    func parse(_ text: String, options: AOFOptions = .init()) throws -> AOFManifest {
        try AOFManifest.parse(Array(text.utf8), name: "m", options: options)
    }

    func parseError(_ text: String, options: AOFOptions = .init()) -> RDBError? {
        do {
            _ = try parse(text, options: options)
            return nil
        } catch let e as RDBError {
            return e
        } catch {
            return RDBError(.io, offset: -1, "\(error)")
        }
    }

    @Test func goodManifest() throws {
        let m = try parse("""
            # written by hand
            file appendonly.aof.2.base.rdb seq 2 type b
            file appendonly.aof.1.incr.aof seq 1 type h
            FILE "with space\\x41.aof" SEQ 3 TYPE i startoffset 10 endoffset 20
            file 'quoted.aof' seq 5 type i\r

            """.replacingOccurrences(of: "\n\n", with: "\n"))
        #expect(m.base?.name == "appendonly.aof.2.base.rdb" && m.base?.seq == 2)
        #expect(m.history.map(\.name) == ["appendonly.aof.1.incr.aof"])
        #expect(m.incrs.map(\.name) == ["with spaceA.aof", "quoted.aof"])
        #expect(m.incrs.map(\.line) == [4, 5])
        #expect(m.loadOrder.map(\.name) == ["appendonly.aof.2.base.rdb", "with spaceA.aof", "quoted.aof"])
        #expect(m.entries.count == 4)
        // Only INCR files, no final newline.
        let n = try parse("file a.aof seq 1 type i\nfile b.aof seq 2 type i")
        #expect(n.base == nil && n.loadOrder.map(\.name) == ["a.aof", "b.aof"])
    }

    @Test func brokenManifests() throws {
        let cases: [(String, String)] = [
            ("", "no file"),
            ("# only a comment\n", "no file"),
            ("file a seq 1 type b\n\nfile b seq 2 type i\n", "empty line"),
            ("file a seq 1 type\n", "key/value pairs"),
            ("file a seq 1\n", "key/value pairs"),
            ("file a seq 1 kind b\n", "no `type` key"),
            ("name a seq 1 type b\n", "no `file` key"),
            ("file a seq 1 type x\n", "unknown file type"),
            ("file a seq 1 type bb\n", "unknown file type"),
            ("file a seq x type i\n", "not a positive integer"),
            ("file a seq 0 type i\n", "not a positive integer"),
            ("file a seq 1 type b\nfile b seq 2 type b\n", "second BASE"),
            ("file a seq 1 type i\nfile b seq 2 type b\n", "must be the first"),
            ("file a seq 2 type i\nfile b seq 2 type i\n", "does not increase"),
            ("file a seq 3 type i\nfile b seq 2 type i\n", "does not increase"),
            ("file a seq 1 type b\nfile a seq 2 type i\n", "listed twice"),
            ("file ../x seq 1 type i\n", "not a path"),
            ("file \"a/b\" seq 1 type i\n", "not a path"),
            ("file \"unterminated seq 1 type i\n", "unbalanced"),
            ("file \"a\"x seq 1 type i\n", "closing double quote"),
            ("file a seq 1 type i " + String(repeating: "k v ", count: 300) + "\n", "longer than 1024"),
        ]
        for (text, message) in cases {
            let e = parseError(text)
            #expect(e?.code == .aofFormat, "\(text.prefix(60)): \(String(describing: e))")
            #expect(e?.description.contains(message) == true, "\(text.prefix(60)): \(String(describing: e))")
            #expect(e?.file == "m")
        }
        // The second line's error names line 2 and its offset.
        let e = parseError("file a seq 1 type b\nfile b seq 2 type q\n")
        #expect(e?.offset == 20 && e?.message.hasPrefix("manifest line 2") == true)
    }

    @Test func fileCountLimit() throws {
        var text = ""
        for i in 1...5000 { text += "file f\(i).aof seq \(i) type i\n" }
        let e = parseError(text)
        #expect(e?.code == .limitExceeded, "\(String(describing: e))")
        var o = AOFOptions()
        o.maxManifestFiles = 3
        #expect(parseError("file a seq 1 type i\nfile b seq 2 type i\nfile c seq 3 type i\n", options: o) == nil)
        #expect(parseError("file a seq 1 type i\nfile b seq 2 type i\nfile c seq 3 type i\nfile d seq 4 type i\n", options: o)?.code == .limitExceeded)
        // A huge manifest is refused before it is parsed (its size is bounded by the file limit).
        let tmp = try TempDir()
        let p = try tmp.write("big.manifest", text + String(repeating: "#" + String(repeating: "x", count: 1000) + "\n", count: 2000))
        var r = AOFRecorder()
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(path: p, into: &r) }
    }

    @Test func detectionByContent() {
        func looks(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { AOFManifest.looksLikeManifest($0) } }
        #expect(looks("file a seq 1 type b\n"))
        #expect(looks("# comment\nFILE a seq 1 type b\n"))
        #expect(looks("seq 1 file a type i\n"))
        #expect(!looks("*2\r\n$6\r\nSELECT\r\n"))
        #expect(!looks("#TS:1\r\n*1\r\n$4\r\nPING\r\n"))
        #expect(!looks("SET a b\r\n"))
        #expect(!looks("filed a\n"))
    }

    /// A base RDB plus INCR files: base, then incr in order; db restarts at 0 in each file.
    func makeSet(_ tmp: TempDir, incr2: [UInt8]? = nil, manifestName: String = "appendonly.aof.manifest") throws {
        var b = RDBBuilder(version: 10)
        b.aux("aof-base", "1")
        b.selectDB(1)
        b.key(type: 0, "base-key", value: RDBBuilder.string("v"))
        try tmp.write("appendonly.aof.3.base.rdb", b.finished())
        try tmp.write("appendonly.aof.3.incr.aof", respAll([["SELECT", "2"], ["SET", "a", "1"]]))
        try tmp.write("appendonly.aof.4.incr.aof", incr2 ?? respAll([["SET", "b", "2"]]))
        try tmp.write("appendonly.aof.2.incr.aof", Array("garbage: a history file is never read".utf8))
        try tmp.write(manifestName, """
            file appendonly.aof.3.base.rdb seq 3 type b
            file appendonly.aof.2.incr.aof seq 2 type h
            file appendonly.aof.3.incr.aof seq 3 type i
            file appendonly.aof.4.incr.aof seq 4 type i

            """)
    }

    @Test func folderManifestAndFile() throws {
        let tmp = try TempDir()
        try makeSet(tmp)
        let expected = [
            "file appendonly.aof.3.base.rdb base", "rdb 10", "key db=1 base-key", "value v", "rdb-end",
            "end appendonly.aof.3.base.rdb",
            "file appendonly.aof.3.incr.aof incr", "db=2 @0+23 SELECT 2", "db=2 @23+27 SET a 1", "end appendonly.aof.3.incr.aof",
            "file appendonly.aof.4.incr.aof incr", "db=0 @0+27 SET b 2", "end appendonly.aof.4.incr.aof",
        ]
        for path in [tmp.path, tmp.path + "/", tmp.path + "/appendonly.aof.manifest"] {
            var r = AOFRecorder()
            let s = try AOFReader.decode(path: path, into: &r)
            #expect(r.events == expected, "\(path)")
            #expect(s.files.map(\.kind) == [.base, .incr, .incr])
            #expect(s.manifest?.history.count == 1)
            #expect(s.warnings.isEmpty)
        }
        // A single INCR file given directly is read on its own.
        var r = AOFRecorder()
        let s = try AOFReader.decode(path: tmp.path + "/appendonly.aof.4.incr.aof", into: &r)
        #expect(s.files.map(\.kind) == [.single] && s.commands == 1)
        // Names do not matter: a manifest called x.aof, an AOF called y.manifest.
        let other = try TempDir()
        try makeSet(other, manifestName: "x.aof")
        let third = try TempDir()
        let fake = try third.write("y.manifest", respAll([["PING"]]))
        #expect(try AOFReader.decode(path: fake, into: &r).files.map(\.kind) == [.single])
        var r2 = AOFRecorder()
        #expect(try AOFReader.decode(path: other.path + "/x.aof", into: &r2).files.count == 3)
        #expect(try AOFReader.loadManifest(path: other.path + "/x.aof").incrs.count == 2)
    }

    @Test func tornTailOnlyInLastFile() throws {
        let torn = respAll([["SET", "b", "2"]]) + Array(resp(["SET", "c", "3"]).prefix(10))
        let tmp = try TempDir()
        try makeSet(tmp, incr2: torn)
        var r = AOFRecorder()
        let s = try AOFReader.decode(path: tmp.path, into: &r)
        #expect(s.warnings.count == 1)
        #expect(s.warnings[0].contains("appendonly.aof.4.incr.aof: offset 27"))
        #expect(s.files.last?.droppedTailOffset == 27)
        var strict = AOFOptions()
        strict.strict = true
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(path: tmp.path, into: &r, options: strict) }
        // The same tail in a file that is not the last one is an error.
        let tmp2 = try TempDir()
        try makeSet(tmp2)
        try tmp2.write("appendonly.aof.3.incr.aof", torn)
        var r2 = AOFRecorder()
        do {
            _ = try AOFReader.decode(path: tmp2.path, into: &r2)
            Issue.record("a torn non-last file was accepted")
        } catch let e as RDBError {
            #expect(e.code == .truncated && e.offset == 27)
            #expect(e.file?.hasSuffix("appendonly.aof.3.incr.aof") == true)
        }
    }

    @Test func missingAndAmbiguousFiles() throws {
        let tmp = try TempDir()
        try makeSet(tmp)
        try FileManager.default.removeItem(atPath: tmp.path + "/appendonly.aof.4.incr.aof")
        var r = AOFRecorder()
        do {
            _ = try AOFReader.decode(path: tmp.path, into: &r)
            Issue.record("a missing INCR was accepted")
        } catch let e as RDBError {
            #expect(e.code == .io && e.message.contains("appendonly.aof.4.incr.aof") && e.message.contains("line 4"))
        }
        #expect(r.events.isEmpty, "nothing is delivered before every listed file is known to exist")
        // Two manifests, or none, in a folder.
        let two = try TempDir()
        try makeSet(two)
        try two.write("other.manifest", "file a seq 1 type i\n")
        try two.write("temp-appendonly.aof.manifest", "ignored")
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(path: two.path, into: &r) }
        let none = try TempDir()
        try none.write("temp-appendonly.aof.manifest", "file a seq 1 type i\n")
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(path: none.path, into: &r) }
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(path: none.path + "/nope.aof", into: &r) }
    }

    /// The manifest read through a stream (a pipe) is told apart from an AOF the same way.
    @Test func manifestFromStreamIsDetected() throws {
        let tmp = try TempDir()
        try makeSet(tmp)
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tmp.path + "/appendonly.aof.manifest")))
        let input = InputBuffer(stream: ChunkedArrayStream(text, chunk: 3), chunkSize: 64, name: "-")
        #expect(try isManifestForTest(input))
    }

    func isManifestForTest(_ input: InputBuffer) throws -> Bool {
        try input.fill(atLeast: 4096)
        return AOFManifest.looksLikeManifest(input.window)
    }
}
