import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// Counts keys and elements; the decode-only baseline.
struct CountingSink: RDBVisitor {
    var keys = 0
    var elements = 0
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction { keys += 1; return .decode }
    mutating func stringValue(_ value: RDBString) throws { elements += 1 }
    mutating func listElement(_ element: RDBString) throws { elements += 1 }
    mutating func setMember(_ member: RDBString) throws { elements += 1 }
    mutating func zsetMember(_ member: RDBString, score: Double) throws { elements += 1 }
    mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws { elements += 1 }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let args = CommandLine.arguments
let path = args[1]
let mode = args.count > 2 ? args[2] : "null"
let input = try InputBuffer.open(path: path)
let size = input.window.count
let t0 = now()
switch mode {
case "jsonl":
    let out = OutputBuffer(target: FileDescriptorTarget(fd: open("/dev/null", O_WRONLY)))
    var w = JSONLWriter(out: out)
    _ = try RDBReader.decode(input, into: &w)
default:
    var s = CountingSink()
    _ = try RDBReader.decode(input, into: &s)
    print("keys \(s.keys) elements \(s.elements)")
}
let dt = now() - t0
print("\(mode): \(size) bytes in \((dt * 1000).rounded() / 1000) s = \(Int(Double(size) / dt / 1e6)) MB/s")
