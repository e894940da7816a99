import ArgumentParser
import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// Output formats of `rdbcat`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, jsonl, resp, restore, keys, stats, memory
}

extension BinaryMode: ExpressibleByArgument {}

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Decode RDB/AOF files and write them in another format (the default command).",
        discussion: """
            FILE is a path, or - for standard input. Regular files are memory-mapped; a zstd-compressed \
            input is recognised by content and decompressed on the fly. Errors name the file, the byte \
            offset and the key, and end the run with a non-zero exit; output stays valid up to the last \
            complete key.
            """
    )

    @Argument(help: "Input files (RDB, AOF, manifest, appendonlydir); - for stdin.", completion: .file())
    var files: [String] = ["-"]

    @Option(name: .shortAndLong, help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .jsonl

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    @Flag(help: "Show progress on stderr even when it is not a terminal.")
    var progress = false

    @Flag(help: "Never show progress.")
    var noProgress = false

    @Option(help: "How JSON formats write byte strings: escape (UTF-8, invalid bytes as \\udcXX) or base64.")
    var binary: BinaryMode = .escape

    @Flag(help: "JSONL: add encoding, idle and freq fields.")
    var metadata = false

    @Flag(help: "Accept RDB versions newer than this tool knows (and try to decode them).")
    var allowNewerVersions = false

    @Flag(help: "Do not verify the CRC64 trailer.")
    var noVerifyChecksum = false

    @Option(help: "Largest single record a streamed input may buffer, in MiB.")
    var maxRecordMB: Int = 8192

    func run() throws {
        var options = RDBDecoderOptions()
        options.allowNewerVersions = allowNewerVersions
        options.verifyChecksum = !noVerifyChecksum
        options.maxRecordBytes = maxRecordMB << 20

        let target: OutputTarget
        if let output { target = try FileDescriptorTarget.create(path: output) } else { target = FileDescriptorTarget.standardOutput }
        let out = OutputBuffer(target: target)
        let showProgress = !noProgress && (progress || isatty(2) != 0)

        do {
            switch format {
            case .jsonl:
                var sink = JSONLWriter(out: out, binary: binary, includeMetadata: metadata)
                try decodeAll(&sink, options: options, showProgress: showProgress)
            default:
                throw ValidationError("format \(format.rawValue) is not available yet")
            }
            try out.flush()
        } catch let e as RDBError {
            out.rollback()
            try? out.flush()
            writeStderr("rdbcat: error: \(e)\n")
            throw ExitCode(2)
        }
    }

    /// Decodes every input in order into one sink.
    func decodeAll<V: RDBVisitor>(_ sink: inout V, options: RDBDecoderOptions, showProgress: Bool) throws {
        for path in files {
            let input = try InputBuffer.open(path: path, limit: options.maxRecordBytes)
            let total = input.isStreaming ? nil : input.window.count
            let reporter = ProgressReporter(input: input, total: total, enabled: showProgress)
            var wrapped = ProgressVisitor(inner: sink, progress: reporter)
            _ = try RDBReader.decode(input, into: &wrapped, options: options)
            sink = wrapped.inner
        }
    }
}
