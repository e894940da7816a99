import ArgumentParser
import ObjectStore
import RDBImport

/// Where `s3://bucket/key` inputs (and a migration task's bucket) are read from: shared by `cat`, `import`
/// and `migrate`.
struct ObjectStoreFlags: ParsableArguments {
    @Option(help: ArgumentHelp(
        "S3-compatible service the s3://bucket/key inputs are read from, e.g. https://obs.cn-north-4.myhuaweicloud.com (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], OBS_ACCESS_KEY_ID/OBS_SECRET_ACCESS_KEY, or --obs-credentials-file).",
        valueName: "URL"))
    var obsEndpoint: String?

    @Option(help: ArgumentHelp("Region of the signature scope (default: from the endpoint's name, e.g. cn-north-4, else us-east-1).", valueName: "REGION"))
    var obsRegion: String?

    @Flag(help: "Address objects as /bucket/key on the endpoint's host (self-hosted services) instead of bucket.host/key.")
    var obsPathStyle = false

    @Option(help: ArgumentHelp("Read the access key pair from this file (AWS credentials file, KEY=VALUE lines, or a credentials.csv).", valueName: "FILE"))
    var obsCredentialsFile: String?

    @Option(help: ArgumentHelp("Bytes per ranged GET, in KiB (a read holds three ranges: the one decoded, two fetched ahead).", valueName: "KIB"))
    var obsRangeKb = 4096

    @Option(help: ArgumentHelp("Seconds to keep resuming a read after a dropped connection or a 5xx, from the last byte received.", valueName: "SECONDS"))
    var obsRetryTimeout = 60.0

    /// The object store these flags name (nil without --obs-endpoint).
    func inputs() throws -> ObjectInputs? {
        guard let obsEndpoint else {
            if obsRegion != nil || obsPathStyle || obsCredentialsFile != nil {
                throw ValidationError("--obs-region, --obs-path-style and --obs-credentials-file go with --obs-endpoint URL")
            }
            return nil
        }
        let credentials: S3Credentials
        if let obsCredentialsFile {
            do { credentials = try S3Credentials.fromFile(obsCredentialsFile) } catch { throw ValidationError("\(error)") }
        } else if let c = S3Credentials.fromEnvironment() {
            credentials = c
        } else {
            throw ValidationError("no credentials for \(obsEndpoint): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or OBS_ACCESS_KEY_ID and OBS_SECRET_ACCESS_KEY), or give --obs-credentials-file")
        }
        guard obsRangeKb > 0, obsRetryTimeout >= 0 else { throw ValidationError("--obs-range-kb must be positive, --obs-retry-timeout not negative") }
        var configuration: S3Configuration
        do {
            configuration = try S3Configuration(endpoint: obsEndpoint, region: obsRegion, pathStyle: obsPathStyle, credentials: credentials)
        } catch {
            throw ValidationError("--obs-endpoint: \(error)")
        }
        configuration.rangeBytes = obsRangeKb << 10
        configuration.firstRangeBytes = min(configuration.firstRangeBytes, configuration.rangeBytes)
        configuration.retryTimeout = obsRetryTimeout
        return ObjectInputs(client: S3Client(configuration: configuration, onRetry: { writeStderr("rdbcat: warning: \($0)\n") }))
    }

    /// The object store for `paths`; an `s3://` path without --obs-endpoint is an error.
    func inputs(for paths: [String]) throws -> ObjectInputs? {
        let objects = try inputs()
        if objects == nil, let p = paths.first(where: S3Location.isObjectPath) {
            throw ValidationError("\(p): reading from a bucket needs --obs-endpoint URL")
        }
        return objects
    }
}

extension ImportProgress {
    /// For an object: bytes of the object read (compressed bytes for a compressed one) against its size.
    func reading(_ objects: ObjectInputs?) -> ImportProgress {
        guard let stats = objects?.stats(file) else { return self }
        var p = self
        p.inputOffset = stats.bytesRead
        p.inputSize = stats.size
        return p
    }
}
