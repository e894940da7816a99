import Testing
import RDBKit
import RDBSinks

/// The writers say what they wrote (`KeyPlan`), take a key prefix (a temporary name) and write strings
/// with NX and PXAT when asked; the plans match their bytes.
@Suite struct KeyPlanTests {
    /// Sets the prefix before each key and records the plan the writer published after it.
    struct Tap<W: RDBVisitor>: RDBForwardingVisitor {
        var inner: W
        let prefix: [UInt8]
        let setPrefix: (inout W, [UInt8]) -> Void
        let plan: (W) -> KeyPlan
        var plans: [KeyPlan] = []

        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            setPrefix(&inner, prefix)
            return try inner.beginKey(key, info)
        }

        mutating func endKey() throws {
            try inner.endKey()
            plans.append(plan(inner))
        }
    }

    static func file() -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        b.key(type: 0, "s", value: RDBBuilder.string("hello"), expireMs: 1_900_000_000_123)
        b.key(type: 0, "n", value: RDBBuilder.string("v"))
        b.key(type: 1, "l", value: RDBBuilder.length(3) + RDBBuilder.string("a") + RDBBuilder.string("b") + RDBBuilder.string("c"))
        b.key(type: 5, "z", value: RDBBuilder.length(1) + RDBBuilder.string("m") + RDBBuilder.le(UInt64((-0.0).bitPattern)))
        return b.finished()
    }

    @Test func respWriter() throws {
        var o = RESPWriterOptions(maxElementsPerCommand: 2, emitSelect: false)
        o.setIfAbsent = true
        o.inlineExpiry = true
        let out = OutputBuffer(target: nil)
        var tap = Tap(inner: RESPWriter(out: out, options: o), prefix: Array("tmp:".utf8),
                      setPrefix: { $0.keyPrefix = $1 }, plan: { $0.keyPlan })
        _ = try RDBReader.decode(bytes: Self.file(), into: &tap)
        let maker = String(decoding: RESPWriter.skiplistMaker, as: UTF8.self)
        #expect(try respText(out.take()) == [
            "SET tmp:s hello NX PXAT 1900000000123", "SET tmp:n v NX", "RPUSH tmp:l a b", "RPUSH tmp:l c",
            "ZADD tmp:z 0 \(maker)", "ZADD tmp:z -0 m", "ZREM tmp:z \(maker)",
        ])
        #expect(tap.plans == [
            KeyPlan(form: .commands, commands: 1, needsGuard: false), KeyPlan(form: .commands, commands: 1, needsGuard: false),
            KeyPlan(form: .commands, commands: 2, needsGuard: true), KeyPlan(form: .commands, commands: 3, needsGuard: true),
        ])
        // The -0 score is kept by its own trailing ZADD once the set is a skiplist (written under the prefix),
        // so nothing is lossy.
        #expect(tap.inner.lossyKeys.isEmpty)
    }

    /// Without inline expiry a string with an expiry takes two commands, and needs a guard.
    @Test func stringWithSeparateExpiry() throws {
        let out = OutputBuffer(target: nil)
        var tap = Tap(inner: RESPWriter(out: out, options: RESPWriterOptions(emitSelect: false)), prefix: [],
                      setPrefix: { $0.keyPrefix = $1 }, plan: { $0.keyPlan })
        _ = try RDBReader.decode(bytes: Self.file(), into: &tap)
        #expect(try respText(out.take()).prefix(3) == ["SET s hello", "PEXPIREAT s 1900000000123", "SET n v"])
        #expect(tap.plans.prefix(2) == [KeyPlan(form: .commands, commands: 2, needsGuard: true), KeyPlan(form: .commands, commands: 1, needsGuard: false)])
    }

    @Test func restoreWriter() throws {
        let out = OutputBuffer(target: nil)
        var tap = Tap(inner: RestoreWriter(out: out, options: RestoreWriterOptions(targetVersion: 10, replace: false, emitSelect: false)),
                      prefix: Array("t:".utf8), setPrefix: { $0.keyPrefix = $1 }, plan: { $0.keyPlan })
        _ = try RDBReader.decode(bytes: Self.file(), into: &tap)
        let commands = try parseRESPCommands(out.take())
        #expect(commands.map { String(decoding: $0[0] + [0x20] + $0[1], as: UTF8.self) } == ["RESTORE t:s", "RESTORE t:n", "RESTORE t:l", "RESTORE t:z"])
        #expect(tap.plans == Array(repeating: KeyPlan(form: .restore, commands: 1, needsGuard: false), count: 4))
    }
}
