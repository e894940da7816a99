func fixed(_ x: Double, _ digits: Int) -> String {
    if !x.isFinite { return "\(x)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    let whole = Int(v / scale)
    let frac = Int(v - Double(whole) * scale)
    let sign = x < 0 && v != 0 ? "-" : ""
    if digits == 0 { return sign + String(whole) }
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return "\(sign)\(whole).\(f)"
}

func fmtSeconds(_ s: Double) -> String {
    if s >= 100 { return fixed(s, 0) + " s" }
    if s >= 10 { return fixed(s, 1) + " s" }
    if s >= 1 { return fixed(s, 2) + " s" }
    return fixed(s, 3) + " s"
}

func human(_ bytes: Int) -> String {
    let b = Double(bytes)
    if b >= 1e9 { return fixed(b / 1e9, 2) + " GB" }
    if b >= 1e6 { return fixed(b / 1e6, 1) + " MB" }
    if b >= 1e3 { return fixed(b / 1e3, 1) + " KB" }
    return "\(bytes) B"
}

func mbps(_ bytes: Int, _ seconds: Double) -> String {
    let v = Double(bytes) / seconds / 1e6
    return (v >= 100 ? fixed(v, 0) : fixed(v, 1)) + " MB/s"
}

func perSecond(_ n: Int, _ seconds: Double) -> String {
    let v = Double(n) / seconds
    if v >= 1e6 { return fixed(v / 1e6, 2) + " M/s" }
    if v >= 1e3 { return fixed(v / 1e3, 1) + " k/s" }
    return fixed(v, 0) + " /s"
}

func ratio(_ x: Double) -> String {
    x >= 10 ? fixed(x, 0) : (x >= 1 ? fixed(x, 1) : fixed(x, 2))
}

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}
