/// Ordering tests of a value against fixed bounds, e.g. `version: {ge: "52", lt: "60"}`.
/// Every bound must hold, so two bounds make a range.
struct ThrottleComparison: Sendable {
    enum Operator: String, CaseIterable, Sendable {
        case eq, ne, lt, le, gt, ge

        func holds(_ order: Order) -> Bool {
            switch self {
            case .eq: return order == .equal
            case .ne: return order != .equal
            case .lt: return order == .less
            case .le: return order != .greater
            case .gt: return order == .greater
            case .ge: return order != .less
            }
        }
    }

    enum Order: Sendable { case less, equal, greater }

    /// How the value and the bounds are read.
    enum Kind: String, Sendable {
        /// Dotted version: numeric parts compared as numbers, missing parts are 0, letters after
        /// a part's number (`a1`, `b3`, `esr`) ignored. A value not starting with a digit never matches.
        case version
        /// JSON numbers only (inside a JSON annotation); strings never match.
        case number
        /// Plain string order by Unicode code points, as Python compares strings.
        case text
    }

    let kind: Kind
    let bounds: [(Operator, Bound)]

    /// A bound, parsed once at load.
    enum Bound: Sendable {
        case version([Int])
        case number(Double)
        case text(String)
    }

    /// Parses a bound written in the rule file; nil when it is not a valid `kind`.
    static func bound(_ text: String, kind: Kind) -> Bound? {
        switch kind {
        case .version: return versionParts(text).map(Bound.version)
        case .number: return Double(text).map(Bound.number)
        case .text: return .text(text)
        }
    }

    func matches(_ value: JSONValue) -> Bool {
        switch kind {
        case .version:
            guard let parts = Self.versionParts(value.stringValue) else { return false }
            return bounds.allSatisfy { op, bound in
                guard case .version(let b) = bound else { return false }
                return op.holds(Self.compare(parts, b))
            }
        case .number:
            guard case .number(let n) = value else { return false }
            return bounds.allSatisfy { op, bound in
                guard case .number(let b) = bound else { return false }
                return op.holds(n < b ? .less : n > b ? .greater : .equal)
            }
        case .text:
            let s = value.stringValue
            return bounds.allSatisfy { op, bound in
                guard case .text(let b) = bound else { return false }
                return op.holds(Self.compare(s, b))
            }
        }
    }

    /// `"91.5.0esr"` → `[91, 5, 0]`; nil unless the value starts with a digit.
    static func versionParts(_ s: String) -> [Int]? {
        guard let first = s.unicodeScalars.first, ("0"..."9").contains(first) else { return nil }
        return s.split(separator: ".", omittingEmptySubsequences: false).map { piece in
            Int(piece.prefix { $0.isASCII && $0.isNumber }) ?? 0
        }
    }

    static func compare(_ a: [Int], _ b: [Int]) -> Order {
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x < y ? .less : .greater }
        }
        return .equal
    }

    static func compare(_ a: String, _ b: String) -> Order {
        if a.unicodeScalars.elementsEqual(b.unicodeScalars) { return .equal }
        return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? .less : .greater
    }
}
