import Foundation
import Testing
@testable import RDBKit

/// A memory-mapped input gives back the pages the decoder (and the background checksum) are done with, so
/// the mapping's resident size stays bounded however large the file is.
///
/// The resident size is read from `/proc/self/smaps` for the mapping itself, so other tests running in the
/// same process do not disturb it, and it does not depend on timing: without the releases every page the
/// decoder touched would still be counted.
@Suite(.serialized) struct MappedResidencyTests {
    static let mib = 1 << 20
    /// What a mapped decode may keep resident: two release steps, the checksum's lead, and slack.
    static let bound = 2 * InputBuffer.releaseStep + 16 * mib

    /// Resident bytes of the mapping holding `address`, or nil when `/proc/self/smaps` cannot be read.
    static func residentBytes(of address: UnsafeRawPointer?) -> Int? {
        // Read with read(2): /proc files report a size of 0.
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard let address, fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += chunk[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        let a = UInt(bitPattern: address)
        var inside = false
        for line in text.split(separator: "\n") {
            let first = line.prefix(while: { $0 != " " })
            if let dash = first.firstIndex(of: "-"), let lo = UInt(first[..<dash], radix: 16),
               let hi = UInt(first[first.index(after: dash)...], radix: 16)
            {
                inside = lo <= a && a < hi
            } else if inside, line.hasPrefix("Rss:") {
                return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
            }
        }
        return nil
    }

    static func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rdb-residency-\(UUID().uuidString)\(suffix)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `count` string keys of `size` bytes each; key i's value is filled with byte `i & 0xFF`.
    static func stringsRDB(count: Int, size: Int, checksum: Bool = false) -> [UInt8] {
        var b = RDBBuilder(version: 11)
        b.bytes.reserveCapacity(count * (size + 32) + 64)
        b.selectDB(0)
        for i in 0..<count {
            b.key(type: 0, "key:\(i)", value: RDBBuilder.string([UInt8](repeating: UInt8(i & 0xFF), count: size)))
        }
        return b.finished(checksum: checksum)
    }

    /// Touches every page of each value, checks its content, and samples the mapping's resident size.
    struct Sampler: AOFVisitor {
        let mapping: UnsafeRawPointer?
        var keys = 0
        var commands: [[UInt8]] = []
        var peak = 0
        var atEnd = 0
        var samples = 0
        var wrongValues = 0
        var expected: UInt8 = 0

        mutating func sample() {
            if let r = MappedResidencyTests.residentBytes(of: mapping) {
                peak = max(peak, r)
                samples += 1
            }
        }

        static func touch(_ bytes: UnsafeRawBufferPointer, all value: UInt8) -> Bool {
            guard !bytes.isEmpty else { return false }
            var i = 0
            while i < bytes.count {
                if bytes[i] != value { return false }
                i += 4096
            }
            return bytes[bytes.count - 1] == value
        }

        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            if keys % 256 == 0 { sample() }
            expected = UInt8(keys & 0xFF)
            keys += 1
            return .decode
        }

        mutating func stringValue(_ value: RDBString) throws {
            if !Sampler.touch(value.bytes, all: expected) { wrongValues += 1 }
        }

        mutating func endFile(checksum: RDBChecksumStatus) throws {
            atEnd = MappedResidencyTests.residentBytes(of: mapping) ?? -1
        }

        /// Takes the second part of a split file (`takesParts`): sampled on its thread, merged after.
        var takesParts = false
        var merges = 0
        mutating func makeSplitPart() -> Sampler? { takesParts ? Sampler(mapping: mapping) : nil }
        mutating func mergeSplitPart(_ part: consuming Sampler, dbAtStart: Int) throws {
            merges += 1
            commands += part.commands
            wrongValues += part.wrongValues
            peak = max(peak, part.peak)
            samples += part.samples
        }

        mutating func command(_ c: AOFCommand) throws {
            if commands.count % 64 == 0 { sample() }
            let args = c.args.map { $0.bytes }
            commands.append(Array(args[0]))
            // SET k<i> <value filled with i & 0xFF>
            if args.count == 3, let i = Int(String(decoding: args[1].dropFirst(), as: UTF8.self)),
               !Sampler.touch(args[2], all: UInt8(i & 0xFF))
            {
                wrongValues += 1
            }
        }
    }

    @Test func mappedRDBStaysBounded() throws {
        let size = 4096
        let count = 96 * MappedResidencyTests.mib / size
        let path = try MappedResidencyTests.temporaryFile(MappedResidencyTests.stringsRDB(count: count, size: size), suffix: ".rdb")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        var sampler = Sampler(mapping: input.window.baseAddress)
        var options = RDBDecoderOptions()
        options.verifyChecksum = false  // the decoder alone: no checksum thread, so the bound is exact
        _ = try RDBReader.decode(input, into: &sampler, options: options)
        #expect(sampler.keys == count)
        #expect(sampler.wrongValues == 0)
        #expect(sampler.samples >= count / 256)
        #expect(sampler.peak > 0, "the mapping's resident size could not be read")
        #expect(sampler.peak <= MappedResidencyTests.bound, "peak resident \(sampler.peak >> 20) MiB of a \(input.offset >> 20) MiB mapping")
    }

    @Test func mappedRDBWithBackgroundChecksum() throws {
        let size = 64 << 10
        let count = 96 * MappedResidencyTests.mib / size
        let rdb = MappedResidencyTests.stringsRDB(count: count, size: size, checksum: true)
        let path = try MappedResidencyTests.temporaryFile(rdb, suffix: ".rdb")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        var sampler = Sampler(mapping: input.window.baseAddress)
        let summary = try RDBReader.decode(input, into: &sampler)
        guard case .verified = summary.checksum else {
            Issue.record("checksum: \(summary.checksum)")
            return
        }
        #expect(sampler.keys == count)
        #expect(sampler.wrongValues == 0)
        // The checksum thread may be ahead of the decoder (it waits) or behind it (the decoder's pages are
        // released anyway): either way a bounded stretch of each reader's recent pages is resident.
        #expect(sampler.peak > 0, "the mapping's resident size could not be read")
        #expect(sampler.peak <= MappedResidencyTests.bound + InputBuffer.releaseStep, "peak resident \(sampler.peak >> 20) MiB")
        // Once the checksum is in, everything before the last record's release point is given back.
        #expect(sampler.atEnd >= 0 && sampler.atEnd <= MappedResidencyTests.bound, "resident at the end: \(sampler.atEnd >> 20) MiB")
    }

    /// The release policy between the two readers, step by step: a checksum far ahead of the decoder, then one
    /// far behind it.
    @Test func checksumAheadAndBehindAreReleased() throws {
        let mib = MappedResidencyTests.mib
        let path = try MappedResidencyTests.temporaryFile([UInt8](repeating: 1, count: 64 * mib), suffix: ".bin")
        defer { unlink(path) }
        for behind in [false, true] {
            let input = try InputBuffer.open(path: path)
            let mapping = try #require(input.mapping)
            let base = try #require(input.window.baseAddress)
            var sum = 0
            func touch(_ from: Int, _ to: Int) {
                for i in stride(from: from * mib, to: to * mib, by: 4096) { sum &+= Int(base.load(fromByteOffset: i, as: UInt8.self)) }
            }
            func resident() -> Int { (MappedResidencyTests.residentBytes(of: base) ?? -1) / mib }
            mapping.advance(.checksum, to: 0)
            if !behind {
                // The checksum reads 48 MiB while the decoder is at 8: it keeps 16 MiB ahead of the decoder.
                touch(0, 48)
                mapping.advance(.decoder, to: 8 * mib)
                mapping.advance(.checksum, to: 48 * mib)
                #expect(resident() == 16, "checksum ahead: [8, 24) MiB stay")
                touch(8, 64)
                mapping.advance(.decoder, to: 64 * mib)
                #expect(resident() == 16, "decoder at the end: [48, 64) MiB stay until the checksum is done")
            } else {
                // The decoder reads 48 MiB while the checksum is at 0: it keeps 16 MiB behind the decoder.
                touch(0, 48)
                mapping.advance(.decoder, to: 48 * mib)
                #expect(resident() == 16, "checksum behind: [32, 48) MiB stay")
                touch(0, 8)
                mapping.advance(.checksum, to: 8 * mib)
                #expect(resident() == 16, "the pages the checksum read back are given back again")
            }
            mapping.advance(.checksum, to: .max)
            #expect(resident() == 0, "checksum done")
            #expect(sum > 0)
        }
    }

    /// A smaller release step (what an import uses) keeps the checksum's lead to two steps.
    @Test func smallerStepShortensTheChecksumLead() throws {
        let mib = MappedResidencyTests.mib
        let path = try MappedResidencyTests.temporaryFile([UInt8](repeating: 1, count: 32 * mib), suffix: ".bin")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        input.releaseEvery(2 * mib)
        let mapping = try #require(input.mapping)
        let base = try #require(input.window.baseAddress)
        var sum = 0
        for i in stride(from: 0, to: 24 * mib, by: 4096) { sum &+= Int(base.load(fromByteOffset: i, as: UInt8.self)) }
        mapping.advance(.checksum, to: 0)
        mapping.advance(.decoder, to: 8 * mib)
        mapping.advance(.checksum, to: 24 * mib)
        #expect((MappedResidencyTests.residentBytes(of: base) ?? -1) == 4 * mib, "checksum ahead: [8, 12) MiB stay")
        mapping.advance(.checksum, to: .max)
        #expect(sum == 24 * mib / 4096)
    }

    /// Bytes copied out of a mapped input are given back at once (their whole pages), and read back from the
    /// file if they are read again; bytes that are not the map's are left alone.
    @Test func copiedBytesAreGivenBack() throws {
        let mib = MappedResidencyTests.mib
        let file = (0..<(16 * mib)).map { UInt8(truncatingIfNeeded: $0 / 4096) }
        let path = try MappedResidencyTests.temporaryFile(file, suffix: ".bin")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        let window = input.window
        let base = try #require(window.baseAddress)
        func resident() -> Int { MappedResidencyTests.residentBytes(of: base) ?? -1 }
        var sum = 0
        for i in stride(from: 0, to: window.count, by: 4096) { sum &+= Int(window[i]) }
        #expect(resident() == 16 * mib)
        // From byte 100 on, 8 MiB: the first page holds bytes before them, the last one bytes after.
        input.releaseCopied(UnsafeRawBufferPointer(rebasing: window[100..<(100 + 8 * mib)]))
        // (At most the pages around them stay: 8 MiB and a page here, 8 MiB when the kernel maps the file in
        // large folios.)
        let left = resident()
        #expect(left >= 7 * mib && left <= 8 * mib + 4096, "\(left) bytes resident")
        #expect(window.elementsEqual(file), "the released pages read back from the file")
        // Not the map's: an array's bytes, and a stream's window.
        let array = [UInt8](repeating: 7, count: 3 * 4096)
        array.withUnsafeBytes { input.releaseCopied($0) }
        #expect(array.allSatisfy { $0 == 7 })
        let stream = InputBuffer(stream: ChunkedArrayStream(Array(file.prefix(64 << 10))), chunkSize: 64 << 10)
        try stream.fill(atLeast: 64 << 10)
        stream.releaseCopied(stream.window)
        #expect(stream.window.elementsEqual(file.prefix(64 << 10)))
        #expect(sum > 0)
    }

    /// A stream's window read ahead for a record that does not fit yet grows no further than the record is
    /// known to need: every page of the buffer is written sooner or later.
    @Test func streamReadAheadDoesNotGrowTheBuffer() throws {
        let mib = MappedResidencyTests.mib
        let bytes = [UInt8](repeating: 1, count: 16 * mib)
        let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: 64 << 10), chunkSize: 4 * mib)
        try input.fill(atLeast: 3 * mib)
        #expect(input.capacity == 4 * mib)
        // A walk stopped at the window's end, needing one byte more: read on to the capacity, not twice the window.
        var e = RDBError(.truncated, offset: input.offset + input.window.count, "cut")
        e.bytesNeeded = 1
        try RDBReader.growWindow(input, after: e)
        #expect(input.capacity == 4 * mib && input.window.count == 4 * mib)
        // A record known to need more than the buffer grows it.
        e = RDBError(.truncated, offset: input.offset + input.window.count, "cut")
        e.bytesNeeded = 1
        try RDBReader.growWindow(input, after: e)
        #expect(input.capacity == 8 * mib && input.window.count >= 4 * mib + 1)
    }

    @Test func mappedAOFReadInTwoPartsStaysBounded() throws {
        // Two readers, each giving back its pages as it moves on (from where its part or piece starts), and all of a
        // piece's once it is read; the pages the search for where pieces start touched are given back at once.
        let size = 64 << 10
        let count = 64 * MappedResidencyTests.mib / size
        var aof: [UInt8] = []
        aof.reserveCapacity(count * (size + 64))
        for i in 0..<count {
            aof += respBytes([Array("SET".utf8), Array("k\(i)".utf8), [UInt8](repeating: UInt8(i & 0xFF), count: size)])
        }
        let path = try MappedResidencyTests.temporaryFile(aof, suffix: ".aof")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        var sampler = Sampler(mapping: input.window.baseAddress)
        sampler.takesParts = true
        var options = AOFOptions()
        options.splitMinimumBytes = 8 << 20
        _ = try AOFReader.decode(input, into: &sampler, options: options)
        #expect(sampler.merges >= 1)
        #expect(sampler.commands.count == count && sampler.wrongValues == 0)
        #expect(sampler.peak > 0, "the mapping's resident size could not be read")
        // Each reader keeps at most a release step (half the usual one) behind it, plus the slack.
        #expect(sampler.peak <= InputBuffer.releaseStep + 16 * MappedResidencyTests.mib,
                "peak resident \(sampler.peak >> 20) MiB of a \(aof.count >> 20) MiB mapping read in two parts")
    }

    @Test func mappedAOFStaysBoundedAndKeepsMultiBlocks() throws {
        let size = 64 << 10
        let count = 64 * MappedResidencyTests.mib / size
        // A MULTI block of 12 MiB in the middle: its commands are delivered from the mapping on EXEC.
        let multiFrom = count / 2
        let multiTo = multiFrom + 12 * MappedResidencyTests.mib / size
        var aof: [UInt8] = []
        aof.reserveCapacity(count * (size + 64))
        for i in 0..<count {
            if i == multiFrom { aof += resp(["MULTI"]) }
            aof += respBytes([Array("SET".utf8), Array("k\(i)".utf8), [UInt8](repeating: UInt8(i & 0xFF), count: size)])
            if i == multiTo { aof += resp(["EXEC"]) }
        }
        let path = try MappedResidencyTests.temporaryFile(aof, suffix: ".aof")
        defer { unlink(path) }
        let input = try InputBuffer.open(path: path)
        #expect(!input.isStreaming)
        var sampler = Sampler(mapping: input.window.baseAddress)
        _ = try AOFReader.decode(input, into: &sampler)
        #expect(sampler.commands.count == count + 2)
        #expect(sampler.wrongValues == 0)
        #expect(sampler.peak > 0, "the mapping's resident size could not be read")
        #expect(sampler.peak <= MappedResidencyTests.bound + 12 * MappedResidencyTests.mib,
                "peak resident \(sampler.peak >> 20) MiB of a \(aof.count >> 20) MiB mapping")
    }
}
