/// Where a byte-by-byte scan of JSON stands with regard to string literals, so that checks of its
/// structure (nesting depth, Python's `NaN`) skip what is inside strings, escaped quotes included.
struct JSONStringTracker {
    private var inString = false, escaped = false

    /// Takes the next byte: true when it belongs to a string literal, its quotes included.
    mutating func isInString(_ byte: UInt8) -> Bool {
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            }
            return true
        }
        inString = byte == UInt8(ascii: "\"")
        return inString
    }
}
