import ArgumentParser
import RDBCatCommand
import RDBKit
import Testing

/// `rdbcat`'s quick reading of its arguments (`CatJob(quickArguments:)`: input paths, a format, an output file,
/// a thread count)
/// against ArgumentParser's, which reads everything else: for the arguments it takes, the same job in every
/// setting (so a default changed in `Cat` and not in `CatJob`, or the other way, fails here); everything else
/// it leaves to ArgumentParser.
@Suite("rdbcat's quick argument reading")
struct CatArgumentsTests {
    /// Every setting of a job, as text (the filter's clock set aside; the opener by whether there is one).
    static func settings(_ job: CatJob) -> String {
        var filter = job.filter
        filter.now = 0
        return """
            files \(job.files) format \(job.format) output \(String(describing: job.output)) binary \(job.binary) \
            metadata \(job.metadata) salvage \(job.salvage) target \(String(describing: job.targetVersion)) \
            zset \(job.compactSortedSets) \
            batch \(job.batchElements)/\(job.batchBytes) threads \(String(describing: job.threads)) \
            rdb \(job.rdb) aof \(job.aof) progress \(job.showProgress) filter \(filter) opener \(job.opener != nil)
            """
    }

    @Test("Paths, --format/-f, --output/-o and --threads (a value after a space or '='): the job ArgumentParser makes", arguments: [
        [],
        ["dump.rdb"],
        ["-"],
        ["a.rdb", "b.aof", "appendonlydir"],
        ["dump.rdb", "--format", "keys"],
        ["--format", "stats", "dump.rdb"],
        ["dump.rdb", "-f", "resp"],
        ["dump.rdb", "--format=restore"],
        ["a.rdb", "--format", "jsonl", "b.rdb"],
        ["dump.rdb", "-o", "out.json", "--format", "json"],
        ["dump.rdb", "--output=out.resp", "-f", "resp"],
        ["dump.rdb", "--output", "keys", "--format", "memory"],
        ["--format", "keys"],
        ["dump.rdb", "--format", "resp", "--threads", "1"],
        ["--threads=4", "dump.rdb"],
        ["dump.rdb", "--threads", "0"],
    ])
    func sameJob(_ arguments: [String]) throws {
        let quick = try #require(CatJob(quickArguments: arguments))
        let parsed = try #require(try Cat.parseAsRoot(arguments) as? Cat)
        let (a, b) = (Self.settings(quick), Self.settings(try parsed.job))
        #expect(a == b)
    }

    @Test("Anything else is left to ArgumentParser", arguments: [
        ["dump.rdb", "--threads", "x"],
        ["dump.rdb", "--threads", "-1"],
        ["dump.rdb", "--threads", "1", "--threads", "2"],
        ["dump.rdb", "--format", "nope"],
        ["dump.rdb", "--format"],
        ["dump.rdb", "-fkeys"],
        ["dump.rdb", "-f=keys"],
        ["dump.rdb", "--format", "keys", "--format", "resp"],
        ["dump.rdb", "-o", "a", "-o", "b"],
        ["dump.rdb", "-o", "-"],
        ["dump.rdb", "--output="],
        ["--", "dump.rdb"],
        ["dump.rdb", "--salvage"],
        ["dump.rdb", "--no-progress"],
        ["dump.rdb", "--db", "0"],
        ["dump.rdb", "-x"],
        ["dump.rdb", "--zset-max-listpack-value", "4000"],
    ])
    func leftToArgumentParser(_ arguments: [String]) {
        #expect(CatJob(quickArguments: arguments) == nil)
    }

    /// `--zset-max-listpack-entries` / `-value`: the target's limits for the resp and restore writers, the other
    /// at its default; negative values refused.
    @Test func sortedSetLimits() throws {
        let parsed = try #require(try Cat.parseAsRoot(["dump.rdb", "-f", "resp", "--zset-max-listpack-value", "4000"]) as? Cat)
        #expect(try parsed.job.compactSortedSets == CompactSortedSetLimits(entries: 128, value: 4000))
        let bad = try #require(try Cat.parseAsRoot(["dump.rdb", "--zset-max-listpack-entries=-1"]) as? Cat)
        #expect(throws: (any Error).self) { try bad.job }
        #expect(try #require(CatJob(quickArguments: ["dump.rdb"])).compactSortedSets == CompactSortedSetLimits())
    }
}
