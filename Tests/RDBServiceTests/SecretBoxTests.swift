import Foundation
import RDBService
import Testing

@Suite struct SecretBoxTests {
    static let hexKey = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"
    static let otherKey = Data(repeating: 7, count: 32).base64EncodedString()

    @Test func sealsAndOpensWithTheSameKey() throws {
        let box = try SecretBox(keyText: Self.hexKey)
        let secret = #"{"password":"s3cr3t ✓"}"#
        let sealed = try box.seal(secret)
        #expect(sealed.hasPrefix("v1:"))
        #expect(!sealed.contains("s3cr3t"))
        #expect(try box.open(sealed) == secret)
        #expect(try box.seal(secret) != sealed, "a fresh nonce each time")
        // the same key written as base64, with a trailing newline, opens it too
        let bytes = stride(from: 0, to: 64, by: 2).map { i -> UInt8 in
            let start = Self.hexKey.index(Self.hexKey.startIndex, offsetBy: i)
            return UInt8(Self.hexKey[start..<Self.hexKey.index(start, offsetBy: 2)], radix: 16) ?? 0
        }
        #expect(try SecretBox(keyText: Data(bytes).base64EncodedString() + "\n").open(sealed) == secret)
    }

    @Test func anotherKeyCannotOpen() throws {
        let sealed = try SecretBox(keyText: Self.hexKey).seal("pw")
        let error = #expect(throws: SecretBox.Failure.self) { try SecretBox(keyText: Self.otherKey).open(sealed) }
        #expect(error?.description.contains("another key") == true)
    }

    @Test func alteredDataCannotOpen() throws {
        let box = try SecretBox(keyText: Self.hexKey)
        let sealed = try box.seal("a password")
        var bytes = try #require(Data(base64Encoded: String(sealed.dropFirst(3))))
        bytes[14] ^= 1
        #expect(throws: SecretBox.Failure.self) { try box.open("v1:" + bytes.base64EncodedString()) }
        #expect(throws: SecretBox.Failure.self) { try box.open("v2:" + sealed.dropFirst(3)) }
        #expect(throws: SecretBox.Failure.self) { try box.open("v1:AAAA") }
        #expect(throws: SecretBox.Failure.self) { try box.open("v1:not base64!") }
    }

    @Test(arguments: ["short-key-text-1234", String(repeating: "z", count: 64), "0011223344556677", Data(count: 16).base64EncodedString()])
    func aBadKeyIsAnErrorThatDoesNotRepeatIt(keyText: String) throws {
        let error = #expect(throws: SecretBox.Failure.self) { try SecretBox(keyText: keyText) }
        let text = try #require(error).description
        #expect(!text.contains(keyText))
        #expect(text.contains("64 hex digits"))
        #expect(text.contains("openssl rand -hex 32"))
    }

    @Test func fromTheEnvironment() throws {
        let name = "RDBCAT_TEST_KEY_\(UUID().uuidString.prefix(8))"
        let unset = #expect(throws: SecretBox.Failure.self) { try SecretBox.fromEnvironment(name) }
        #expect(unset?.description.contains("\(name) is not set") == true)
        #expect(unset?.description.contains("openssl rand -hex 32") == true)
        setenv(name, "not a key", 1)
        let bad = #expect(throws: SecretBox.Failure.self) { try SecretBox.fromEnvironment(name) }
        #expect(bad?.description.hasPrefix(name) == true)
        #expect(bad?.description.contains("not a key") == false)
        setenv(name, Self.hexKey, 1)
        let box = try SecretBox.fromEnvironment(name)
        #expect(try box.open(SecretBox(keyText: Self.hexKey).seal("x")) == "x")
        unsetenv(name)
    }
}
