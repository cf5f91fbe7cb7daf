import Foundation
import Telemetry

/// A JSON value: annotations, raw crashes and Sentry events are all JSON.
/// Kept as our own tiny type so the raw crash serializes with sorted keys in one pass. Not
/// `indirect`: arrays and objects already hold their elements out of line, and boxing every
/// value cost each annotation of each crash an allocation.
public enum JSONValue: Equatable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as the throttler and storage see an annotation: strings as they are,
    /// other scalars in their JSON spelling, containers as compact JSON.
    public var stringValue: String {
        switch self {
        case .string(let s): return s
        default: return serialized()
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// Compact JSON with object keys sorted, as the raw crash is stored.
    public func serialized() -> String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the value as compact JSON, object keys sorted. Bytes, not a String: the raw crash
    /// is stored as bytes, and appending to an array is cheaper than growing a String.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .string(let s): JSONString.append(s, to: &out)
        case .number(let n):
            out.append(contentsOf: (n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)).utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            // Sorted pairs, not sorted keys: no second hash lookup per member.
            JSONValue.writeObject(JSONValue.sortedByKey(Array(o)), to: &out)
        }
    }

    /// Members in the order their object is written: by the keys' UTF-8 bytes, which is code
    /// point order, as Python's `sort_keys` orders Antenna's raw crashes (String's `<` orders by
    /// canonical equivalence, and took longer). Each key's first 8 bytes, as one big-endian
    /// integer, decide most comparisons; equal ones fall back to the whole keys.
    public static func sortedByKey(_ members: [(key: String, value: JSONValue)]) -> [(key: String, value: JSONValue)] {
        var keyed = members.map { member -> (prefix: UInt64, member: (key: String, value: JSONValue)) in
            var prefix: UInt64 = 0, shift: UInt64 = 56
            for byte in member.key.utf8.prefix(8) {
                prefix |= UInt64(byte) << shift
                shift &-= 8
            }
            return (prefix, member)
        }
        keyed.sort {
            $0.prefix != $1.prefix ? $0.prefix < $1.prefix : $0.member.key.utf8.lexicographicallyPrecedes($1.member.key.utf8)
        }
        return keyed.map(\.member)
    }

    /// An object from members already in the order to write (unique keys).
    public static func writeObject(_ members: [(key: String, value: JSONValue)], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, member) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONString.append(member.key, to: &out)
            out.append(UInt8(ascii: ":"))
            member.value.write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension JSONValue {
    public enum ParseError: Error { case invalid, tooDeep }

    /// Memory reserved per byte of a client's document before it is parsed (`DecodeLimits.json`):
    /// a 4 MB document peaked at 22 to 38 times its size, by its shape (arrays of numbers, empty
    /// strings, objects, nested arrays), as /proc/self/statm showed while it was parsed.
    public static let parseCostPerByte = 48

    /// Parses JSON bytes, refusing nesting deeper than `maxDepth` (hostile input).
    public static func parse<Bytes: Collection>(_ bytes: Bytes, maxDepth: Int = 64) throws -> JSONValue
    where Bytes.Element == UInt8 {
        let data = Data(bytes)
        if try exceedsDepth(data, maxDepth) { throw ParseError.tooDeep }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ParseError.invalid
        }
    }

    /// Counts bracket depth outside strings before handing the bytes to Foundation,
    /// whose recursive parser must never see a hostile nesting depth.
    private static func exceedsDepth(_ data: Data, _ maxDepth: Int) throws -> Bool {
        var depth = 0, strings = JSONStringTracker()
        for byte in data where !strings.isInString(byte) {
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }

}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
