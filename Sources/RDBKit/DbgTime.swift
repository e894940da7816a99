#if canImport(Glibc)
import Glibc
#endif
public let dbgT0: Double = dbgNow()
public func dbgNow() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6 }
public func dbgT(_ s: String) { if getenv("DBGT") != nil { let ms = Int((dbgNow() - dbgT0) * 100); var ts = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); let cpu = Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000; let line = "\(ms / 100).\(ms % 100 < 10 ? "0" : "")\(ms % 100) cpu \(cpu) \(s)\n"; _ = line.withCString { write(2, $0, strlen($0)) } } }

public let dbgPresize: Int = getenv("PRESIZE").map { Int(atoi($0)) } ?? 0
