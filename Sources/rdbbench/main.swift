#if canImport(Glibc)
import Glibc
#endif

// rdbbench: throughput, keys/s and peak RSS of the decoder and its writers, optionally next to the other
// tools on this machine (`--compare`). See `rdbbench --help` and Benchmarks/README.md.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--child" {
    guard arguments.count == 3 else {
        writeStderr("usage: rdbbench --child MODE FILE\n")
        exit(64)
    }
    exit(Child.run(mode: arguments[1], path: arguments[2]))
}
exit(Bench.main(arguments))
