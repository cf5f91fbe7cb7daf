#if canImport(Glibc)
import Glibc
#endif

/// Random (version 4) UUIDs as lowercase hex, from one `arc4random_buf` (glibc: one
/// `getrandom(2)` call). Foundation's `UUID()` opens, reads and closes `/dev/urandom` for each
/// one: three system calls per crash and a file descriptor, about 5% of a small crash's CPU; and
/// `SystemRandomNumberGenerator` makes a call per 8 bytes.
enum RandomUUID {
    /// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, or the 32 digits alone.
    static func make(hyphens: Bool = true) -> String {
        var bytes = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &bytes) { raw in
            arc4random_buf(raw.baseAddress!, raw.count)
            raw[6] = raw[6] & 0x0F | 0x40  // version 4
            raw[8] = raw[8] & 0x3F | 0x80  // RFC 4122 variant
            return String(unsafeUninitializedCapacity: hyphens ? 36 : 32) { out in
                var n = 0
                for (i, byte) in raw.enumerated() {
                    if hyphens, i == 4 || i == 6 || i == 8 || i == 10 { out[n] = UInt8(ascii: "-"); n += 1 }
                    out[n] = Hex.digits[Int(byte >> 4)]
                    out[n + 1] = Hex.digits[Int(byte & 0x0F)]
                    n += 2
                }
                return n
            }
        }
    }
}
