import Crypto
import Foundation

/// Seals the passwords of a task request with the service's key (AES-GCM, 256-bit key), so the store keeps
/// them encrypted and authenticated: `v1:` + base64(nonce | ciphertext | tag), a fresh random nonce each time.
public struct SecretBox: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private static let prefix = "v1:"
    /// The key's 32 bytes (`SymmetricKey` is not `Sendable`; one is made for each use).
    private let keyBytes: Data
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// A key given as 64 hex digits or as the base64 of 32 bytes (surrounding white space ignored). An error
    /// never repeats the text.
    public init(keyText: String) throws {
        let text = keyText.trimmingCharacters(in: .whitespacesAndNewlines)
        if let bytes = Self.hexBytes(text) ?? Data(base64Encoded: text), bytes.count == 32 {
            keyBytes = bytes
            return
        }
        throw Failure(description: """
            the secret key is not 64 hex digits or the base64 of 32 bytes (it has \(text.count) characters); \
            make one with `openssl rand -hex 32`
            """)
    }

    /// The key in the environment variable `name`.
    public static func fromEnvironment(_ name: String = "RDBCAT_SECRET_KEY") throws -> SecretBox {
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else {
            throw Failure(description: """
                \(name) is not set: the service seals task passwords with it; make a key with \
                `openssl rand -hex 32` and keep it (tasks sealed with it cannot be resumed without it)
                """)
        }
        do {
            return try SecretBox(keyText: text)
        } catch let error as Failure {
            throw Failure(description: "\(name): \(error.description)")
        }
    }

    public func seal(_ plaintext: String) throws -> String {
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(Data(plaintext.utf8), using: key)
        } catch {
            throw Failure(description: "cannot seal a secret: \(error)")
        }
        guard let combined = box.combined else {
            throw Failure(description: "cannot seal a secret: the nonce is not 12 bytes")
        }
        return Self.prefix + combined.base64EncodedString()
    }

    public func open(_ sealed: String) throws -> String {
        guard sealed.hasPrefix(Self.prefix), let data = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))),
              data.count >= 12 + 16 else {
            throw Failure(description: "the sealed secrets are not in the v1: form (v1: + base64 of nonce, ciphertext and tag)")
        }
        let plain: Data
        do {
            plain = try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: key)
        } catch {
            throw Failure(description: """
                the sealed secrets do not open: they were sealed with another key (is RDBCAT_SECRET_KEY the key \
                they were sealed with?), or they were altered
                """)
        }
        guard let text = String(data: plain, encoding: .utf8) else {
            throw Failure(description: "the sealed secrets open to bytes that are not UTF-8 text")
        }
        return text
    }

    private static func hexBytes(_ text: String) -> Data? {
        guard text.utf8.count == 64, text.allSatisfy(\.isHexDigit) else { return nil }
        var bytes = Data(capacity: 32)
        var i = text.startIndex
        while i < text.endIndex {
            let next = text.index(i, offsetBy: 2)
            guard let byte = UInt8(text[i..<next], radix: 16) else { return nil }
            bytes.append(byte)
            i = next
        }
        return bytes
    }
}
