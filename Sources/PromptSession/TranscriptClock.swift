import Foundation

/// Transcript times: ISO 8601 in UTC with milliseconds.
public enum TranscriptClock {
    /// `d` without its fraction of a millisecond: what ``iso(_:)`` keeps, built as
    /// ``parseISO(_:)`` builds it, so a time written and read back is the same `Date`.
    public static func wholeMilliseconds(_ d: Date) -> Date {
        let (secs, ms) = split(d)
        return Date(timeIntervalSince1970: Double(secs) + Double(ms) / 1000)
    }

    /// Whole seconds and milliseconds. The 0.001 ms nudge makes a time already in whole
    /// milliseconds (up to the rounding of a Double, ~0.0002 ms today) stay the same.
    static func split(_ d: Date) -> (seconds: Int64, milliseconds: Int32) {
        let total = Int64((d.timeIntervalSince1970 * 1000 + 0.001).rounded(.down))
        let secs = total >= 0 ? total / 1000 : (total - 999) / 1000
        return (secs, Int32(total - secs * 1000))
    }

    /// By hand: Foundation's formatters load ICU's data, which costs start-up time and memory the
    /// REPL should not pay before its first prompt.
    public static func iso(_ d: Date) -> String {
        let (secs, ms) = split(d)
        var t = time_t(secs)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let date = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
        return "\(date)T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(ms, 3))Z"
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what ``iso(_:)`` writes, and the same without milliseconds).
    public static func parseISO(_ s: String) -> Date? {
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") else { return nil }
        func num(_ a: Int, _ n: Int) -> Int32? {
            guard a + n <= u.count else { return nil }
            var v: Int32 = 0
            for k in a..<(a + n) {
                guard u[k] >= 0x30, u[k] <= 0x39 else { return nil }
                v = v * 10 + Int32(u[k] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let sec = num(17, 2), u[4] == 0x2D, u[7] == 0x2D, u[10] == UInt8(ascii: "T"), u[13] == 0x3A, u[16] == 0x3A,
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61
        else { return nil }
        var ms: Int32 = 0
        if u.count > 20 {
            guard u[19] == UInt8(ascii: "."), u.count == 24, let f = num(20, 3) else { return nil }
            ms = f
        }
        var parts = tm()
        parts.tm_year = y - 1900
        parts.tm_mon = mo - 1
        parts.tm_mday = d
        parts.tm_hour = h
        parts.tm_min = mi
        parts.tm_sec = sec
        let t = timegm(&parts)
        return Date(timeIntervalSince1970: Double(t) + Double(ms) / 1000)
    }
}
