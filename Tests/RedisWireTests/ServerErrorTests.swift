import RedisWire
import Testing

@Suite("Typed server errors")
struct ServerErrorTests {
    @Test("MOVED and ASK carry a redirect, with and without a host")
    func redirects() {
        let moved = RedisServerError("MOVED 3999 127.0.0.1:6381")
        #expect(moved.code == .moved)
        #expect(moved.redirect == .init(isAsk: false, slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(moved.stopsWrites && moved.isCluster && !moved.isTransient)

        let ask = RedisServerError("ASK 12182 :7002")
        #expect(ask.code == .ask)
        #expect(ask.redirect == .init(isAsk: true, slot: 12182, host: "", port: 7002))
        #expect(ask.redirect?.host(defaultingTo: "10.0.0.5") == "10.0.0.5")
        #expect(moved.redirect?.host(defaultingTo: "10.0.0.5") == "127.0.0.1")

        let v6 = RedisServerError("MOVED 1 [::1]:7000")
        #expect(v6.redirect == .init(isAsk: false, slot: 1, host: "::1", port: 7000))
        #expect(v6.redirect?.description == "MOVED 1 [::1]:7000")
        let v6bare = RedisServerError("MOVED 1 ::1:7000")
        #expect(v6bare.redirect?.host == "::1")

        // Malformed redirects keep their code, without a redirect.
        #expect(RedisServerError("MOVED").redirect == nil)
        #expect(RedisServerError("MOVED 99999 h:1").redirect == nil)
        #expect(RedisServerError("ASK 5 host").redirect == nil)
        #expect(RedisServerError("ASK 5 host:0").redirect == nil)
    }

    @Test("Codes: transient, stopping writes, cluster, login, the rest generic")
    func codes() {
        for c in ["LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script", "TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down"] {
            let e = RedisServerError(c)
            #expect(e.isTransient && !e.stopsWrites, "\(c)")
        }
        let fatal: [(String, RedisServerError.Code)] = [
            ("OOM command not allowed when used memory > 'maxmemory'.", .outOfMemory),
            ("READONLY You can't write against a read only replica.", .readOnly),
            ("NOAUTH Authentication required.", .noAuth),
            ("WRONGPASS invalid username-password pair or user is disabled.", .wrongPass),
            ("NOPERM this user has no permissions to run the 'set' command", .noPermission),
            ("MISCONF Redis is configured to save RDB snapshots", .misconfigured),
            ("MASTERDOWN Link with MASTER is down", .masterDown),
            ("CROSSSLOT Keys in request don't hash to the same slot", .crossSlot),
            ("NOREPLICAS Not enough good replicas to write.", .noReplicas),
        ]
        for (text, code) in fatal {
            let e = RedisServerError(text)
            #expect(e.code == code && e.stopsWrites && !e.isTransient, "\(text)")
            #expect(e.message == text && e.description == text)
        }
        #expect(RedisServerError("CLUSTERDOWN x").isCluster && RedisServerError("CROSSSLOT x").isCluster)
        #expect(!RedisServerError("OOM x").isCluster)
        #expect(RedisServerError("NOAUTH x").isAuthentication && RedisServerError("WRONGPASS x").isAuthentication)

        let busyKey = RedisServerError("BUSYKEY Target key name already exists.")
        #expect(busyKey.code == .busyKey && !busyKey.stopsWrites && !busyKey.isTransient)

        let generic = RedisServerError("WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(generic.code == RedisServerError.Code("WRONGTYPE") && generic.code.rawValue == "WRONGTYPE")
        #expect(!generic.stopsWrites && !generic.isTransient && generic.redirect == nil)
        #expect(RedisServerError("ERR unknown command 'FOO'").code == .err)
        #expect(RedisServerError("").code.rawValue == "")
    }

    @Test("Replies expose their error typed, also inside an EXEC array")
    func replies() {
        #expect(RESPReply.error("MOVED 1 h:2").serverError?.redirect?.port == 2)
        #expect(RESPReply.simple("OK").serverError == nil)
        let exec = RESPReply.array([.simple("OK"), .error("OOM no"), .error("ERR later")])
        #expect(exec.firstNestedServerError?.code == .outOfMemory)
        #expect(RESPReply.array([.integer(1)]).firstNestedServerError == nil)
    }
}
