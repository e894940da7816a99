import ArgumentParser
import RDBKit

/// Where `s3://bucket/key` inputs (and a migration task's bucket) are read from: shared by `cat`, `import`
/// and `migrate`.
package struct ObjectStoreFlags: ParsableArguments {
    package init() {}

    @Option(help: ArgumentHelp(
        "S3-compatible service the s3://bucket/key inputs are read from, e.g. https://obs.cn-north-4.myhuaweicloud.com (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], OBS_ACCESS_KEY_ID/OBS_SECRET_ACCESS_KEY, or --obs-credentials-file).",
        valueName: "URL"))
    package var obsEndpoint: String?

    @Option(help: ArgumentHelp("Region of the signature scope (default: from the endpoint's name, e.g. cn-north-4, else us-east-1).", valueName: "REGION"))
    package var obsRegion: String?

    @Flag(help: "Address objects as /bucket/key on the endpoint's host (self-hosted services) instead of bucket.host/key.")
    package var obsPathStyle = false

    @Option(help: ArgumentHelp("Read the access key pair from this file (AWS credentials file, KEY=VALUE lines, or a credentials.csv).", valueName: "FILE"))
    package var obsCredentialsFile: String?

    @Option(help: ArgumentHelp("Bytes per ranged GET, in KiB (a read holds three ranges: the one decoded, two fetched ahead).", valueName: "KIB"))
    package var obsRangeKb = 4096

    @Option(help: ArgumentHelp("Seconds to keep resuming a read after a dropped connection or a 5xx, from the last byte received.", valueName: "SECONDS"))
    package var obsRetryTimeout = 60.0

    /// The opener of the object store for `paths` (nil without --obs-endpoint; an `s3://` path without it is an
    /// error). rdbcat itself never gets here with object store flags or paths: it hands such runs to rdbcat-full.
    func opener(for paths: [String]) throws -> InputOpener? {
        try objectStoreSupport?.opener(self, paths)
    }

    /// Whether `arguments` name an object store (an --obs-* flag, an s3:// or obs:// path), which the rdbcat
    /// executable leaves to rdbcat-full.
    package static func mentioned(in arguments: [String]) -> Bool {
        arguments.contains { $0.hasPrefix("--obs") || $0.hasPrefix("s3://") || $0.hasPrefix("obs://") }
    }
}

/// What `cat` needs from ObjectStore (s3://bucket/key inputs), which this module does not link: rdbcat-full sets
/// it at start; rdbcat leaves it nil and hands every run that names an object store to rdbcat-full.
package struct ObjectStoreSupport: Sendable {
    /// `ObjectStoreFlags.inputs(for:)`'s opener.
    package var opener: @Sendable (ObjectStoreFlags, [String]) throws -> InputOpener?
    /// For an error of the object store, whether the output written so far is flushed before the error is
    /// reported; nil for any other error.
    package var flushesOutput: @Sendable (any Error) -> Bool?

    package init(opener: @escaping @Sendable (ObjectStoreFlags, [String]) throws -> InputOpener?, flushesOutput: @escaping @Sendable (any Error) -> Bool?) {
        self.opener = opener
        self.flushesOutput = flushesOutput
    }
}

package nonisolated(unsafe) var objectStoreSupport: ObjectStoreSupport?
