import ObjectStore
import RDBKit
import RDBSinks

extension MigrationTask {
    /// What the check of one file in an object-store bucket found.
    public struct ObjectCheck: Sendable {
        public var file: BackupFile
        /// `s3://bucket/file_name`.
        public var path: String
        /// What its first bytes hold (nil when it could not be read).
        public var sniff: ObjectSniff?
        /// Everything wrong with it, each naming the file.
        public var problems: [String]
    }

    /// Checks every file in the bucket before anything is written: it exists (HEAD), its size is the declared
    /// one, and its first bytes are an input this tool and the decoding options take (an RDB of a known
    /// version, an AOF; zstd or gzip). Every problem of every file is listed; nothing stops at the first one,
    /// except an endpoint that does not answer at all (after its retries): the files after it are not asked
    /// about, each waiting out the same retries.
    public func check(objects: ObjectInputs, decoder: RDBDecoderOptions) -> [ObjectCheck] {
        var silent: String?
        return files.enumerated().map { i, f in
            let location = S3Location(bucket: bucketName, key: f.fileName)
            let field = "backup_files.files[\(i)]"
            var check = ObjectCheck(file: f, path: location.description, sniff: nil, problems: [])
            if let silent {
                check.problems.append("\(field).file_name: '\(f.fileName)' not checked: the endpoint did not answer for \(silent)")
                return check
            }
            do {
                let sniff = try ObjectSniff.sniff(location, inputs: objects)
                check.sniff = sniff
                objects.pin(check.path, sniff.info)  // the import reads the version checked here, or fails
                if let declared = f.size?.value, declared != sniff.info.size {
                    check.problems.append("\(field).size: '\(f.fileName)' is declared as \(declared) bytes but the object has \(sniff.info.size)")
                }
                switch sniff.kind {
                case .rdb:
                    if let h = sniff.header {
                        if !h.isKnown && !decoder.allowNewerVersions {
                            check.problems.append("\(field).file_name: '\(f.fileName)' is an RDB of version \(h.version) (\(h.family.rawValue)), newer than this tool reads (allow newer versions to try)")
                        }
                    } else {
                        check.problems.append("\(field).file_name: '\(f.fileName)' starts like an RDB but its header is not REDIS0nnn or VALKEYnnn")
                    }
                case .aofManifest, .aofDirectory:
                    check.problems.append("\(field).file_name: '\(f.fileName)' is an AOF manifest: a bucket has no folder for the files it names; list the AOF files themselves, in order")
                case .aof:
                    break
                }
            } catch {
                check.problems.append("\(field).file_name: \(error)")
                if let e = error as? ObjectStoreError, e.status == nil { silent = "'\(f.fileName)'" }
            }
            return check
        }
    }
}

extension MigrationRunner {
    /// An object's check and read counters: what it holds, bytes read against its size, resumes.
    func writeObject(_ c: MigrationTask.ObjectCheck, _ j: inout JSONBuilder) {
        j.key("object")
        j.beginObject()
        j.field("path", c.path)
        if let sniff = c.sniff {
            j.field("etag", sniff.info.etag)
            j.field("holds", sniff.summary)
            j.field("compression", sniff.compression.rawValue)
            if let h = sniff.header {
                j.field("rdb_version", h.version)
                j.field("family", h.family.rawValue)
            }
        }
        if let stats = objects?.stats(c.path) {
            j.field("bytes_read", stats.bytesRead)
            j.field("size", stats.size)
            j.field("resumes", stats.resumes)
        }
        j.endObject()
    }
}
