import Foundation

/// What a rule tests, compiled once at load (regexes, lowered strings, parsed bounds).
/// A condition looks either at the whole crash or at one value (an annotation, or a value
/// inside an annotation's JSON); the loader only builds value tests where a value is in scope.
indirect enum ThrottleCondition: Sendable {
    case always
    /// The value is there (an absent annotation never reaches a condition).
    case exists
    case equals(String, caseInsensitive: Bool)
    case oneOf(Set<String>, caseInsensitive: Bool)
    case prefix([String], caseInsensitive: Bool)
    /// Searched anywhere in the value; anchor with `^…$` for a whole match.
    case regex(CompiledRegex)
    case compare(ThrottleComparison)
    /// A BuildID (`YYYYMMDD…`) whose date is more than `days` days before now.
    case buildIDOlderThan(days: Int)
    case allOf([ThrottleCondition])
    case anyOf([ThrottleCondition])
    case not(ThrottleCondition)
    /// Looks at annotation `name`; an absent annotation does not match.
    case field(String, ThrottleCondition)
    /// Walks `path` inside the value, first parsing it as JSON when `parse` (an annotation's
    /// text); anything missing or not JSON does not match.
    case jsonPath([String], parse: Bool, ThrottleCondition)

    /// - Parameter value: the value in scope, nil when the condition looks at the whole crash.
    func matches(_ value: JSONValue?, in crash: CrashReport, now: Date) -> Bool {
        switch self {
        case .always: return true
        case .exists: return value != nil
        case .equals(let expected, let ci):
            guard let s = value.map(\.stringValue) else { return false }
            return (ci ? s.lowercased() : s) == expected
        case .oneOf(let set, let ci):
            guard let s = value.map(\.stringValue) else { return false }
            return set.contains(ci ? s.lowercased() : s)
        case .prefix(let prefixes, let ci):
            guard let raw = value.map(\.stringValue) else { return false }
            let s = ci ? raw.lowercased() : raw
            // Code-point prefix, as Python's startswith.
            return prefixes.contains { s.utf8.starts(with: $0.utf8) }
        case .regex(let regex):
            guard let s = value.map(\.stringValue) else { return false }
            return regex.search(s)
        case .compare(let comparison):
            guard let value else { return false }
            return comparison.matches(value)
        case .buildIDOlderThan(let days):
            guard let s = value.map(\.stringValue), let built = Self.buildDate(s) else { return false }
            return built < now.addingTimeInterval(-Double(days) * 86_400)
        case .allOf(let conditions):
            return conditions.allSatisfy { $0.matches(value, in: crash, now: now) }
        case .anyOf(let conditions):
            return conditions.contains { $0.matches(value, in: crash, now: now) }
        case .not(let condition):
            return !condition.matches(value, in: crash, now: now)
        case .field(let name, let condition):
            guard let annotation = crash.annotations[name] else { return false }
            return condition.matches(annotation, in: crash, now: now)
        case .jsonPath(let path, let parse, let condition):
            guard let value, let found = Self.walk(path, in: value, parse: parse) else { return false }
            return condition.matches(found, in: crash, now: now)
        }
    }

    /// Whether this condition matches every crash (used to find unreachable rules).
    var isAlways: Bool {
        if case .always = self { return true }
        return false
    }

    /// Midnight UTC of the BuildID's leading `YYYYMMDD`; nil when those are not a real date.
    static func buildDate(_ buildID: String) -> Date? {
        let digits = Array(buildID.utf8.prefix(8))
        guard digits.count == 8, digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        func number(_ range: Range<Int>) -> Int { digits[range].reduce(0) { $0 * 10 + Int($1 - 48) } }
        let year = number(0..<4), month = number(4..<6), day = number(6..<8)
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        return Date(timeIntervalSince1970: Double(daysSinceEpoch(year: year, month: month, day: day)) * 86_400)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil),
    /// kept free of Calendar so throttling allocates and locks nothing.
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Follows object keys, or array indexes for numeric components.
    private static func walk(_ path: [String], in value: JSONValue, parse: Bool) -> JSONValue? {
        var current = value
        if parse, case .string(let text) = value {
            guard let parsed = try? JSONValue.parse(text.utf8) else { return nil }
            current = parsed
        }
        for key in path {
            switch current {
            case .object(let object):
                guard let next = object[key] else { return nil }
                current = next
            case .array(let array):
                guard let i = Int(key), array.indices.contains(i) else { return nil }
                current = array[i]
            default:
                return nil
            }
        }
        return current
    }
}

/// A regular expression compiled at load. NSRegularExpression is immutable once built and
/// safe to match from many threads, which Foundation does not yet express as Sendable.
struct CompiledRegex: @unchecked Sendable {
    let regex: NSRegularExpression

    func search(_ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }
}
