import Logging

/// Logging for command-line tools: everything on standard error (standard output carries reports).
public enum ImportLogging {
    /// Installs a standard-error log handler (once per process): notices and above, or everything with
    /// `verbose`.
    public static func bootstrap(verbose: Bool) {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = verbose ? .debug : .notice
            return h
        }
    }
}
