#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import ObjectStore
import RedisWire

/// `rdbcat serve --config FILE`: where tasks are kept, the instances a task may target, where each bucket's
/// files are, and how many tasks run at once.
///
/// ```json
/// {"store": "sqlite:/var/lib/rdbcat/tasks.sqlite",
///  "instances": {"318ed365-…": {"address": "cache-1.internal:6379", "password_env": "CACHE1_PASSWORD"}},
///  "buckets": {"bucket-lmz": {"path": "/data/buckets/bucket-lmz"},
///              "bucket-obs": {"endpoint": "https://obs.example.com", "region": "r1", "path_style": false}},
///  "workers": 2}
/// ```
public struct ServiceConfig: Codable, Sendable {
    /// `sqlite:PATH` (one service) or `postgres://user:password@host:port/db` (services sharing tasks).
    public var store: String
    public var instances: [String: InstanceConfig]
    public var buckets: [String: BucketConfig]
    /// Tasks run at once by this service (at most one per target instance, across services).
    public var workers: Int?
    /// Seconds a worker's hold on a task lasts without renewal (renewed every third of it): how soon a task
    /// whose service died is taken over.
    public var leaseSeconds: Double?
    /// Folder for the replication checkpoints of online migrations (default: beside a SQLite store, else
    /// the system's temporary folder).
    public var stateDir: String?
    /// The environment variable holding the key that seals the passwords of task bodies in the store
    /// (64 hex digits or base64 of 32 bytes; default `RDBCAT_SECRET_KEY`).
    public var secretKeyEnv: String?
    /// Settings of the imports the tasks run (mode, window sizes, ...), as `rdbcat import`'s defaults
    /// unless given.
    public var importMode: String?
    /// Runs a task gets before it is failed (a task whose every run dies with its service; default 5).
    public var maxAttempts: Int?

    enum CodingKeys: String, CodingKey {
        case store, instances, buckets, workers, leaseSeconds = "lease_seconds", stateDir = "state_dir"
        case secretKeyEnv = "secret_key_env", importMode = "import_mode", maxAttempts = "max_attempts"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        store = try c.decode(String.self, forKey: .store)
        instances = try c.decode([String: InstanceConfig].self, forKey: .instances)
        // A service that only runs online migrations needs no bucket.
        buckets = try c.decodeIfPresent([String: BucketConfig].self, forKey: .buckets) ?? [:]
        workers = try c.decodeIfPresent(Int.self, forKey: .workers)
        leaseSeconds = try c.decodeIfPresent(Double.self, forKey: .leaseSeconds)
        stateDir = try c.decodeIfPresent(String.self, forKey: .stateDir)
        secretKeyEnv = try c.decodeIfPresent(String.self, forKey: .secretKeyEnv)
        importMode = try c.decodeIfPresent(String.self, forKey: .importMode)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts)
    }

    public var workerCount: Int { max(1, workers ?? 2) }
    public var lease: Double { max(1, leaseSeconds ?? 30) }
    public var attemptLimit: Int { max(1, maxAttempts ?? 5) }

    public struct InstanceConfig: Codable, Sendable {
        /// `host:port` or a `redis://` / `rediss://` URL.
        public var address: String
        public var username: String?
        public var password: String?
        /// The environment variable holding the password (instead of `password`).
        public var passwordEnv: String?

        enum CodingKeys: String, CodingKey { case address, username, password, passwordEnv = "password_env" }
    }

    public struct BucketConfig: Codable, Sendable {
        /// A local folder holding the bucket's objects.
        public var path: String?
        /// An S3-compatible service (credentials from the service's environment, as for `rdbcat migrate`,
        /// or `credentials_file`).
        public var endpoint: String?
        public var region: String?
        public var pathStyle: Bool?
        public var credentialsFile: String?

        enum CodingKeys: String, CodingKey {
            case path, endpoint, region, pathStyle = "path_style", credentialsFile = "credentials_file"
        }
    }

    /// A configuration error: which key and why.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks a config file.
    public static func load(_ path: String) throws -> ServiceConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid(description: "\(path): cannot read the config file")
        }
        let config: ServiceConfig
        do {
            config = try JSONDecoder().decode(ServiceConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw Invalid(description: "\(path): '\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))' is missing")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw Invalid(description: "\(path): '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw Invalid(description: "\(path): not a valid config (\(error))")
        }
        try config.check()
        return config
    }

    /// Checks what can be checked without connecting: each instance's address, each bucket's place.
    public func check() throws {
        if let w = workers, w < 1 { throw Invalid(description: "workers must be at least 1") }
        if instances.isEmpty { throw Invalid(description: "instances: name at least one target instance") }
        for (id, i) in instances {
            do { _ = try RedisEndpoint.parse(i.address) } catch {
                throw Invalid(description: "instances.\(id).address: \(error)")
            }
            if i.password != nil && i.passwordEnv != nil {
                throw Invalid(description: "instances.\(id): give password or password_env, not both")
            }
        }
        for (name, b) in buckets {
            if (b.path == nil) == (b.endpoint == nil) {
                throw Invalid(description: "buckets.\(name): give its folder (path) or its S3-compatible endpoint, one of them")
            }
        }
    }

    /// The endpoint of a target instance, with its password (`password_env` read now).
    public func endpoint(instance id: String) throws -> RedisEndpoint {
        guard let i = instances[id] else { throw Invalid(description: "no instance '\(id)' in the config") }
        var e = try RedisEndpoint.parse(i.address)
        if let u = i.username { e.username = u }
        if let p = i.password {
            e.password = Secret(p)
        } else if let env = i.passwordEnv {
            guard let v = getenv(env) else {
                throw Invalid(description: "instances.\(id).password_env: the variable \(env) is not set")
            }
            e.password = Secret(String(cString: v))
        }
        return e
    }

    /// The object store of a bucket that lives on an S3-compatible service (nil for a folder).
    public func objectInputs(bucket name: String, onRetry: (@Sendable (String) -> Void)? = nil) throws -> ObjectInputs? {
        guard let b = buckets[name], let endpoint = b.endpoint else { return nil }
        let credentials: S3Credentials
        if let file = b.credentialsFile {
            credentials = try S3Credentials.fromFile(file)
        } else if let c = S3Credentials.fromEnvironment() {
            credentials = c
        } else {
            throw Invalid(description: "buckets.\(name): no credentials for \(endpoint): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or OBS_ACCESS_KEY_ID and OBS_SECRET_ACCESS_KEY) for the service, or give credentials_file")
        }
        let configuration = try S3Configuration(endpoint: endpoint, region: b.region, pathStyle: b.pathStyle ?? false, credentials: credentials)
        return ObjectInputs(client: S3Client(configuration: configuration, onRetry: onRetry))
    }
}
