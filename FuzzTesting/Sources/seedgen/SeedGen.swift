// Seed extraction, built like a fuzz target (so it links against the same instrumented libraries) but doing
// all its work in LLVMFuzzerInitialize: reads the paths listed in $SEEDGEN_LIST (testdata RDB files),
// decodes each with every key answered `.raw`, and writes the embedded blobs it finds as seeds:
//   $SEEDGEN_OUT/listpack, ziplist, intset, zipmap, stream (mode byte + node or value), lzf (encoded strings).
#if canImport(Glibc)
import Glibc
#endif
import RDBKit
import RDBSinks

struct RawCollector: RDBVisitor {
    var values: [(type: RDBValueType, bytes: [UInt8])] = []
    var pending: RDBValueType?
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        pending = info.type
        return .raw
    }
    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {
        if let t = pending { values.append((t, [UInt8](raw))) }
    }
}

final class SeedWriter {
    let root: String
    var written: [String: Int] = [:]
    var seen = Set<UInt64>()
    static let maxPerTarget = 1500
    static let maxSize = 16 << 10

    init(root: String) { self.root = root }

    func fnv(_ b: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }

    func write(_ target: String, _ bytes: [UInt8]) {
        guard bytes.count <= SeedWriter.maxSize, written[target, default: 0] < SeedWriter.maxPerTarget else { return }
        let h = fnv(bytes) ^ fnv(Array(target.utf8))
        guard seen.insert(h).inserted else { return }
        let dir = root + "/" + target
        mkdir(dir, 0o755)
        let path = dir + "/seed-" + String(h, radix: 16)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        written[target, default: 0] += 1
    }
}

/// Reads one RDB string at the cursor: returns its encoded form and its decoded bytes.
func readEncoded(_ parser: inout RDBParser, _ c: inout ByteCursor, _ raw: UnsafeRawBufferPointer) throws -> (encoded: [UInt8], decoded: [UInt8]) {
    let start = c.position
    let s = try parser.readString(&c, slot: 1)
    return ([UInt8](UnsafeRawBufferPointer(rebasing: raw[start..<c.position])), s.isInteger ? [] : [UInt8](s.bytes))
}

func harvest(_ type: RDBValueType, _ value: [UInt8], into w: SeedWriter) {
    var parser = RDBParser()
    value.withUnsafeBytes { raw in
        var c = ByteCursor(raw)
        func blob(_ target: String?) {
            if let (enc, dec) = try? readEncoded(&parser, &c, raw) {
                if let target { w.write(target, dec) }
                if enc.first == 0xC3 { w.write("lzf", enc) }
            }
        }
        switch type.encoding {
        case .string: blob(nil)
        case .hashListpack, .zsetListpack, .setListpack, .hashListpackExPreGA: blob("listpack")
        case .hashListpackEx:
            c.position = 8
            blob("listpack")
        case .listZiplist, .zsetZiplist, .hashZiplist: blob("ziplist")
        case .setIntset: blob("intset")
        case .hashZipmap: blob("zipmap")
        case .listQuicklist:
            guard let n = try? c.readLength() else { return }
            for _ in 0..<min(n, 64) { blob("ziplist") }
        case .listQuicklist2:
            guard let n = try? c.readLength() else { return }
            for _ in 0..<min(n, 64) {
                guard (try? c.readLength()) != nil else { return }
                blob("listpack")
            }
        case .streamListpacks, .streamListpacks2, .streamListpacks3, .streamListpacks4, .streamListpacks5:
            let types: [UInt8] = [15, 19, 21, 26, 27]
            let index = UInt8(types.firstIndex(of: type.rawValue) ?? 0)
            w.write("stream", [index << 1 | 1] + value)
            guard let n = try? c.readLength() else { return }
            for _ in 0..<min(n, 64) {
                // The node key (16 bytes), then the node listpack.
                guard (try? readEncoded(&parser, &c, raw)) != nil, let (enc, node) = try? readEncoded(&parser, &c, raw) else { return }
                w.write("stream", [index << 1] + node)
                w.write("listpack", node)
                if enc.first == 0xC3 { w.write("lzf", enc) }
            }
        default:
            break
        }
    }
}

func readAll(_ path: String) -> [UInt8]? {
    guard let input = try? InputBuffer.open(path: path) else { return nil }
    while (try? input.fillMore()) == true {}
    return [UInt8](input.window)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let listPath = getenv("SEEDGEN_LIST"), let outPath = getenv("SEEDGEN_OUT") else { return 0 }
    let w = SeedWriter(root: String(cString: outPath))
    guard let list = readAll(String(cString: listPath)) else { exit(1) }
    for line in list.split(separator: 0x0A) {
        let path = String(decoding: line, as: UTF8.self)
        guard let bytes = readAll(path) else { continue }
        var collector = RawCollector()
        var o = RDBDecoderOptions()
        o.allowNewerVersions = true
        o.verifyChecksum = false
        _ = try? RDBReader.decode(bytes: bytes, into: &collector, options: o)
        for (t, v) in collector.values { harvest(t, v, into: w) }
    }
    for (t, n) in w.written.sorted(by: { $0.key < $1.key }) { print("seedgen: \(t): \(n) seeds") }
    exit(0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt { 0 }
