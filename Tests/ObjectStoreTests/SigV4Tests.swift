import Testing
@testable import ObjectStore

/// The published AWS examples ("Signature Calculations for the Authorization Header", S3 API reference):
/// the same key pair, time, region and host; the payload hash of an empty body.
@Suite("SigV4")
struct SigV4Tests {
    static let credentials = S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let signer = SigV4Signer(credentials: credentials, region: "us-east-1")
    static let date = "20130524T000000Z"
    static let host = "examplebucket.s3.amazonaws.com"

    @Test("GET Object with a Range header (AWS example)")
    func getObjectRange() {
        let request = SigV4Signer.Request(method: "GET", path: "/test.txt", headers: [
            ("Host", Self.host), ("Range", "bytes=0-9"), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash), ("x-amz-date", Self.date),
        ])
        let s = Self.signer.sign(request, amzDate: Self.date, payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(s.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(s.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(s.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(s.authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("GET Bucket (list objects) with a query (AWS example)")
    func listObjects() {
        let request = SigV4Signer.Request(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [
            ("host", Self.host), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash), ("x-amz-date", Self.date),
        ])
        let s = Self.signer.sign(request, amzDate: Self.date, payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(s.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(s.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test("URI encoding: unreserved kept, the rest %XX upper-case, slashes kept in keys only")
    func encoding() {
        #expect(SigV4Signer.encode("dir/a b+c~d_e.f-g", keepSlash: true) == "dir/a%20b%2Bc~d_e.f-g")
        #expect(SigV4Signer.encode("dir/", keepSlash: false) == "dir%2F")
        #expect(SigV4Signer.encode("é", keepSlash: true) == "%C3%A9")
        #expect(SigV4Signer.amzDate(unixSeconds: 1_369_353_600) == "20130524T000000Z")
    }

    @Test("Credentials: environment, files, and never the secret in a description")
    func credentials() throws {
        let env = ["OBS_ACCESS_KEY_ID": "AK1", "OBS_SECRET_ACCESS_KEY": "SK1secret"]
        let c = try #require(S3Credentials.fromEnvironment { env[$0] })
        #expect(c.accessKeyID == "AK1" && c.secretAccessKey == "SK1secret" && c.sessionToken == nil)
        #expect(!"\(c)".contains("SK1secret") && !String(reflecting: c).contains("SK1secret"))
        #expect(c.redact("bad SK1secret here") == "bad <redacted> here")
        let aws = ["AWS_ACCESS_KEY_ID": "AK2", "AWS_SECRET_ACCESS_KEY": "SK2", "AWS_SESSION_TOKEN": "T2"].merging(env) { a, _ in a }
        #expect(S3Credentials.fromEnvironment { aws[$0] }?.sessionToken == "T2")
        #expect(S3Credentials.fromEnvironment { _ in nil } == nil)
        let ini = S3Credentials.parse("[other]\naws_access_key_id = X\naws_secret_access_key = Y\n[default]\naws_access_key_id = AK3\naws_secret_access_key = SK3\n")
        #expect(ini?.accessKeyID == "AK3" && ini?.secretAccessKey == "SK3")
        #expect(S3Credentials.parse("export AWS_ACCESS_KEY_ID=AK4\nAWS_SECRET_ACCESS_KEY=\"SK4\"\n")?.secretAccessKey == "SK4")
        let csv = S3Credentials.parse("User Name,Access Key Id,Secret Access Key\r\nalice,AK5,SK5\r\n")
        #expect(csv?.accessKeyID == "AK5" && csv?.secretAccessKey == "SK5")
        #expect(S3Credentials.parse("nothing here") == nil)
    }

    @Test("Endpoints: scheme, port, region from OBS/S3 host names, addressing")
    func endpoints() throws {
        let c = S3Credentials(accessKeyID: "a", secretAccessKey: "b")
        let obs = try S3Configuration(endpoint: "https://obs.cn-north-4.myhuaweicloud.com", credentials: c)
        #expect(obs.region == "cn-north-4" && obs.port == 443 && !obs.pathStyle)
        #expect(obs.hostHeader(bucket: "backups") == "backups.obs.cn-north-4.myhuaweicloud.com")
        #expect(obs.path(bucket: "backups", key: "2024/dump 1.rdb") == "/2024/dump%201.rdb")
        #expect(obs.url(bucket: "backups", path: "/k", query: "") == "https://backups.obs.cn-north-4.myhuaweicloud.com:443/k")
        let local = try S3Configuration(endpoint: "http://127.0.0.1:9000/", region: "r1", pathStyle: true, credentials: c)
        #expect(local.hostHeader(bucket: "b") == "127.0.0.1:9000" && local.path(bucket: "b", key: "x/y") == "/b/x/y" && local.region == "r1")
        #expect(try S3Configuration(endpoint: "s3.eu-west-1.amazonaws.com", credentials: c).region == "eu-west-1")
        #expect(throws: S3Configuration.Invalid.self) { try S3Configuration(endpoint: "ftp://x", credentials: c) }
        #expect(throws: S3Configuration.Invalid.self) { try S3Configuration(endpoint: "http://x:99999", credentials: c) }
        #expect(try S3Location.parse("s3://bkt/a/b.rdb") == S3Location(bucket: "bkt", key: "a/b.rdb"))
        #expect(throws: S3Configuration.Invalid.self) { try S3Location.parse("s3://bkt/") }
        #expect(RangeDelegate.contentRange("bytes 100-199/1000")! == (100, 199, 1000))
    }
}
