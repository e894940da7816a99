import ArgumentParser
import ObjectStore
import RDBCatCommand
import RDBImport

extension ObjectStoreFlags {
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

extension ObjectStoreSupport {
    /// The object store for `cat`'s s3://bucket/key inputs.
    static let objectStore = ObjectStoreSupport(
        opener: { flags, paths in try flags.inputs(for: paths)?.opener },
        flushesOutput: { error in error is ObjectStoreError ? true : error is ObjectInputs.Unsupported ? false : nil }
    )
}
