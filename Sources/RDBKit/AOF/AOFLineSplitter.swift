/// Splits a text line into arguments with the quoting rules of `redis-cli` and of the server's inline
/// protocol and manifest loader (`sdssplitargs`):
///
/// - arguments are separated by white space (space, `\t`, `\n`, `\v`, `\f`, `\r`);
/// - `"…"` may hold `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<c>` (= `c`);
/// - `'…'` may hold `\'`; nothing else is an escape;
/// - a closing quote must be followed by white space or the end of the line; a quote may start in the
///   middle of an argument (`ab"c d"` is one argument `abc d`);
/// - an unterminated quote is an error.
///
/// The unescaped arguments are appended to a reused scratch array; `spans` gets two integers per
/// argument (offset into the scratch array, length).
@usableFromInline
struct AOFLineSplitter {
    @usableFromInline var scratch: [UInt8] = []
    @usableFromInline var spans: [Int] = []

    @usableFromInline init() {}

    /// Why a line could not be split, and at which byte of the line.
    struct Failure: Error {
        var position: Int
        var message: String
    }

    @inline(__always)
    static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || (c >= 0x09 && c <= 0x0D)
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// Splits `line` (without its line ending). Returns the number of arguments.
    mutating func split(_ line: UnsafeRawBufferPointer) throws(Failure) -> Int {
        scratch.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
        let n = line.count
        var p = 0
        var argc = 0
        while true {
            while p < n && AOFLineSplitter.isSpace(line[p]) { p += 1 }
            if p >= n { return argc }
            let start = scratch.count
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c: UInt8? = p < n ? line[p] : nil
                if inDouble {
                    guard let c else { throw Failure(position: p, message: "unbalanced double quote") }
                    if c == 0x5C, p + 3 < n, line[p + 1] == 0x78,
                       let h = AOFLineSplitter.hexValue(line[p + 2]), let l = AOFLineSplitter.hexValue(line[p + 3])
                    {
                        scratch.append(h << 4 | l)
                        p += 3
                    } else if c == 0x5C, p + 1 < n {
                        p += 1
                        switch line[p] {
                        case 0x6E: scratch.append(0x0A)  // n
                        case 0x72: scratch.append(0x0D)  // r
                        case 0x74: scratch.append(0x09)  // t
                        case 0x62: scratch.append(0x08)  // b
                        case 0x61: scratch.append(0x07)  // a
                        default: scratch.append(line[p])
                        }
                    } else if c == 0x22 {
                        if p + 1 < n && !AOFLineSplitter.isSpace(line[p + 1]) {
                            throw Failure(position: p + 1, message: "a closing double quote must be followed by a space")
                        }
                        done = true
                    } else {
                        scratch.append(c)
                    }
                } else if inSingle {
                    guard let c else { throw Failure(position: p, message: "unbalanced single quote") }
                    if c == 0x5C, p + 1 < n, line[p + 1] == 0x27 {
                        p += 1
                        scratch.append(0x27)
                    } else if c == 0x27 {
                        if p + 1 < n && !AOFLineSplitter.isSpace(line[p + 1]) {
                            throw Failure(position: p + 1, message: "a closing single quote must be followed by a space")
                        }
                        done = true
                    } else {
                        scratch.append(c)
                    }
                } else {
                    switch c {
                    case nil, 0x20, 0x0A, 0x0D, 0x09, 0x00: done = true
                    case 0x22: inDouble = true
                    case 0x27: inSingle = true
                    case let c?: scratch.append(c)
                    }
                }
                if p < n { p += 1 }
            }
            spans.append(start)
            spans.append(scratch.count - start)
            argc += 1
        }
    }

    /// Argument `i` as a copied array (manifest parsing).
    func argument(_ i: Int) -> [UInt8] {
        Array(scratch[spans[2 * i] ..< spans[2 * i] + spans[2 * i + 1]])
    }
}
