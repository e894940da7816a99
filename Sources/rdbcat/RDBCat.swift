import ArgumentParser
import RDBCatCommand
#if canImport(Glibc)
import Glibc
#endif

/// `rdbcat` decodes files (the `cat` command) itself and hands everything else to `rdbcat-full`, built and
/// installed next to it: the other commands, s3:// inputs, help, version, and any usage error (so what they
/// print is rdbcat-full's, from the whole command tree). It does not link the service stack (NIO, AsyncHTTPClient,
/// Hummingbird, GRDB, PostgresNIO, Foundation), because start-up time grows with it: each first-time protocol
/// lookup of the Swift runtime scans every conformance record of the binary (11.1k in rdbcat-full, 3.7k here),
/// and ArgumentParser makes ~60 of them a run. Arguments that are only input paths, a format, an output file and a
/// thread count (most runs) skip ArgumentParser too (`CatJob(quickArguments:)`): its reflection over the command's options
/// took 2-3.5 ms of every run, as long as the rest of a run on a small file.
@main
struct RDBCat: ParsableCommand {
    static let configuration = rdbcatConfiguration(subcommands: [Cat.self])

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let catArguments = Array(arguments.dropFirst(arguments.first == "cat" ? 1 : 0))
        // A subcommand name anywhere (but `cat` first) is left to rdbcat-full's tree, as are object stores and
        // (without parsing them here first) help, version and completion requests.
        let delegated: Set<String> = ["cat", "import", "sync", "migrate", "serve", "help", "-h", "--help", "-help", "--version"]
        guard !catArguments.contains(where: delegated.contains),
              !arguments.contains(where: { $0.hasPrefix("--generate-completion") || $0.hasPrefix("--experimental") }),
              !ObjectStoreFlags.mentioned(in: arguments)
        else { runFull() }
        // Input paths, a format, an output file and a thread count are read without ArgumentParser's start-up
        // (`CatJob`).
        if let quick = CatJob(quickArguments: catArguments) { run { quick } }
        guard let command = try? Cat.parseAsRoot(catArguments) as? Cat else { runFull() }
        run { try command.job }
    }

    /// Runs the job `make` makes; an error ends the process as ArgumentParser reports it.
    static func run(_ make: () throws -> CatJob) -> Never {
        do {
            try make().run()
            Glibc.exit(0)
        } catch {
            exit(withError: error)
        }
    }
}

/// Replaces this process with rdbcat-full from rdbcat's directory: same arguments, standard streams, process
/// id, and so exit status and signals.
func runFull() -> Never {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    let path = (exe.lastIndex(of: "/").map { String(exe[...$0]) } ?? "./") + "rdbcat-full"
    execv(path, CommandLine.unsafeArgv)
    writeStderr("rdbcat: cannot run \(path) (built and installed with rdbcat): \(String(cString: strerror(errno)))\n")
    Glibc.exit(127)
}
