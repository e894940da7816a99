/// Command-line options of `rdbbench` (parsed by hand: the target does not depend on ArgumentParser).
struct Options {
    var files: [String] = []
    var dataDir = "bench-data"
    var runs = 5
    /// Runs of a tool whose first `runs` have a median under `shortSeconds`: the medians of short runs move
    /// most with this VM's phases (a 40 ms run swings by half from one phase to the next), and more runs cost
    /// little.
    var shortRuns = 15
    var shortSeconds = 0.25
    /// `shortSeconds` for the rows whose ratio to another is a target, and those others (`Bench.targetRatio`).
    var ratioSeconds = 1.0
    var compare = false
    var importMode = false
    var writeResults = false
    var resultsDir = "bench-results"
    var resultsMarkdown = "Benchmarks/RESULTS.md"
    var modes: [ChildMode]? = nil
    /// Seconds one run may take before it is killed (and reported as "> timeout").
    var timeout = 300.0
    /// Seconds of runs one tool gets on one file: after the first run, a tool stops once its runs add up
    /// to this, so a tool 100x slower than the others gets N=1 instead of eating the whole session.
    var budget = 45.0
    var rdbcat: String? = nil
    var importServer = "redis-server"
    var skip: Set<String> = []
    var verbose = false
    /// Before each file, wait (up to 10 min) until the 1-minute load average is at most this.
    var maxLoad: Double? = nil

    static let usage = """
        usage: rdbbench [options] [FILE|DIR ...]

        Benchmarks the decoder on RDB / AOF files (default: every *.rdb, *.aof and appendonlydir in
        bench-data/, made by scripts/bench/make_datasets.py). Each mode runs in its own child process
        (`rdbbench --child MODE FILE`), so peak RSS is per mode. Times are medians of N runs.

        modes (in-process): decode (counting sink, file memory-mapped), decode-stdin (the same through the
          streaming window, the file on standard input), jsonl, resp, restore (each to /dev/null)

        options:
          --compare            also run the other tools found on this machine on the same files, alternating
                               runs: rdbcat --format jsonl|resp, redis-check-rdb, redis-check-aof, rdbtools
                               (rdb --command json|protocol), rdb-py, and the `cat FILE > /dev/null` floor
                               (RDB files: and `cat FILE | cat`, the pipe of the streamed row, alone)
          --import             also import each RDB into a fresh local server: `rdbcat import --replace` and
                               `--restore` vs `rdbcat --format resp | redis-cli --pipe`, with `redis-cli
                               --pipe < (the same RESP, from a file)` as the floor
          --runs N             runs per tool and file (default 5)
          --short-runs N       runs of a tool whose first runs have a median under 0.25 s (default 15; for the
                               rows of the target ratios, reports/decode and resp streamed/mapped, under 1 s)
          --budget S           a tool stops after its runs on a file add up to S seconds (default 45; min 1 run)
          --timeout S          kill a run after S seconds (default 300)
          --modes a,b,...      in-process modes to run (default: all this build has)
          --skip a,b,...       tools to leave out (rdbcat, redis-check-rdb, redis-check-aof, rdbtools, rdb-py, cat)
          --data-dir DIR       where to look when no FILE is given (default bench-data)
          --results-dir DIR    where the Markdown and JSON reports go (default bench-results)
          --write-results      also write the Markdown report to Benchmarks/RESULTS.md
          --rdbcat PATH        the rdbcat to compare (default: next to this executable)
          --import-server BIN  server for --import (default redis-server on PATH)
          --max-load L         before each file, wait (up to 10 min) for the 1-minute load average to be <= L
          --verbose            print every run
          --child MODE FILE    (internal) run one mode in this process and print a RESULT line
        """

    static func parse(_ args: [String]) throws -> Options {
        var o = Options()
        var i = 0
        func value(_ name: String) throws -> String {
            i += 1
            guard i < args.count else { throw SpawnError(description: "\(name) needs a value") }
            return args[i]
        }
        func number(_ name: String) throws -> Double {
            let v = try value(name)
            guard let d = Double(v), d > 0 else { throw SpawnError(description: "\(name): not a positive number: \(v)") }
            return d
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "--compare": o.compare = true
            case "--import": o.importMode = true
            case "--write-results": o.writeResults = true
            case "--verbose", "-v": o.verbose = true
            case "--runs", "-n": o.runs = max(1, Int(try number(a)))
            case "--short-runs": o.shortRuns = max(1, Int(try number(a)))
            case "--budget": o.budget = try number(a)
            case "--timeout": o.timeout = try number(a)
            case "--max-load": o.maxLoad = try number(a)
            case "--data-dir": o.dataDir = try value(a)
            case "--results-dir": o.resultsDir = try value(a)
            case "--rdbcat": o.rdbcat = try value(a)
            case "--import-server": o.importServer = try value(a)
            case "--skip": o.skip = Set(try value(a).split(separator: ",").map(String.init))
            case "--modes":
                var modes: [ChildMode] = []
                for m in try value(a).split(separator: ",") {
                    guard let mode = ChildMode(rawValue: String(m)) else {
                        throw SpawnError(description: "unknown mode \(m); expected \(ChildMode.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    modes.append(mode)
                }
                o.modes = modes
            case "--help", "-h":
                say(usage)
                exit(0)
            default:
                if a.hasPrefix("-") && a != "-" { throw SpawnError(description: "unknown option \(a)\n\n\(usage)") }
                o.files.append(a)
            }
            i += 1
        }
        return o
    }
}

#if canImport(Glibc)
import Glibc
#endif
