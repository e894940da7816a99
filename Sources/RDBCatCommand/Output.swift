#if canImport(Glibc)
import Glibc
#endif

/// Writes text to standard error, unbuffered.
package func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
}

package func writeStdout(_ s: String) {
    var s = s
    s.withUTF8 { b in _ = Glibc.write(1, b.baseAddress, b.count) }
}
