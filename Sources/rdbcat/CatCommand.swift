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

    @Flag(help: """
        Keep going after a key whose value is corrupt inside intact framing (bad ziplist, listpack, intset, \
        zipmap, stream node, LZF block): the key is dropped whole and reported. Corrupt framing (a bad length, \
        type or opcode) or truncation still stops the file, since RDB has no markers to resynchronise on; \
        the report then names the byte range that was not read. Exit status 3 when anything was lost.
        """)
    var salvage = false

    @Option(help: "Largest single record a streamed input may buffer, in MiB.")
    var maxRecordMB: Int = 8192

    func run() throws {
        var options = RDBDecoderOptions()
        options.allowNewerVersions = allowNewerVersions
        options.verifyChecksum = !noVerifyChecksum
        options.maxRecordBytes = maxRecordMB << 20
        options.salvage = salvage
        let log = SalvageLog()

        let target: OutputTarget
        if let output { target = try FileDescriptorTarget.create(path: output) } else { target = FileDescriptorTarget.standardOutput }
        let out = OutputBuffer(target: target)
        let showProgress = !noProgress && (progress || isatty(2) != 0)

        do {
            switch format {
            case .jsonl:
                var sink = JSONLWriter(out: out, binary: binary, includeMetadata: metadata)
                try decodeAll(&sink, out: out, options: options, showProgress: showProgress, log: log)
            default:
                throw ValidationError("format \(format.rawValue) is not available yet")
            }
            try out.flush()
        } catch let e as RDBError {
            out.rollback()
            try? out.flush()
            writeStderr("rdbcat: error: \(e)\n")
            log.report()
            throw ExitCode(2)
        }
        log.report()
        if !log.isClean { throw ExitCode(3) }
    }

    /// Decodes every input in order into one sink.
    func decodeAll<V: RDBVisitor>(_ sink: inout V, out: OutputBuffer, options: RDBDecoderOptions, showProgress: Bool, log: SalvageLog) throws {
        for path in files {
            let input = try InputBuffer.open(path: path, limit: options.maxRecordBytes)
            let total = input.isStreaming ? nil : input.window.count
            let reporter = ProgressReporter(input: input, total: total, enabled: showProgress)
            var wrapped = SalvageVisitor(inner: ProgressVisitor(inner: sink, progress: reporter), log: log, file: path)
            do {
                _ = try RDBReader.decode(input, into: &wrapped, options: options)
            } catch let e as RDBError where options.salvage {
                // Nothing after this point of the file can be read: drop the partial key, record the range and go
                // on with the next file.
                out.rollback()
                log.stopped.append((path, e.offset, total, e))
            }
            sink = wrapped.inner.inner
        }
    }
}
