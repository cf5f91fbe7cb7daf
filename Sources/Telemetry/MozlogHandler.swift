import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler writing mozlog JSON lines:
/// `{"Timestamp":…,"Type":…,"Logger":"breakwater","Hostname":…,"EnvVersion":"2.0","Severity":…,"Pid":…,"Fields":{…}}`.
/// `Type` is the `type` metadata when set (the audit line uses `crash`), else the logger's label.
/// Numbers and booleans given as `.stringConvertible` stay JSON numbers and booleans.
public struct MozlogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let sink: LogSink
    private let host: HostFields

    /// Process-wide fields, computed once, and the constant part of every line they make.
    struct HostFields: Sendable {
        let hostname: String
        let pid: Int32
        let dyno: String?
        /// From `"Logger"` to `"Severity":`, the same on every line.
        let middle: [UInt8]
        static let current = HostFields(hostname: ProcessInfo.processInfo.hostName,
                                        pid: ProcessInfo.processInfo.processIdentifier,
                                        dyno: ProcessInfo.processInfo.environment["DYNO"])

        init(hostname: String, pid: Int32, dyno: String?) {
            self.hostname = hostname
            self.pid = pid
            self.dyno = dyno
            var middle = Array(",\"Logger\":\"breakwater\",\"Hostname\":".utf8)
            JSONString.append(hostname, to: &middle)
            middle += ",\"EnvVersion\":\"2.0\",\"Severity\":".utf8
            self.middle = middle
        }
    }

    public init(label: String, sink: LogSink, level: Logger.Level) {
        self.label = label
        self.sink = sink
        self.logLevel = level
        self.host = .current
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Straight into the field list (the handler's own metadata is almost always empty): no
        // merged dictionary to build, remove from and insert into for every line.
        let merged = metadata.isEmpty ? event.metadata ?? [:] : metadata.merging(event.metadata ?? [:]) { $1 }
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        fields.reserveCapacity(merged.count + 1)
        var type = label, hasMessage = false
        for (key, value) in merged {
            if key == "type" {
                if case .string(let t) = value { type = t }
                continue
            }
            if key == "msg" { hasMessage = true }
            fields.append((key, value))
        }
        let message = event.message.description
        if !hasMessage, !message.isEmpty { fields.append((key: "msg", value: .string(message))) }
        sink.write(line: Self.line(type: type, level: event.level, fields: fields, host: host))
    }

    /// One mozlog line, newline included, as the UTF-8 bytes the sink writes. `fields` in any
    /// order (they are written sorted by name) and without duplicates; the dyno, when there is
    /// one, is added. Built as bytes, not a String: every crash writes its audit line (and the
    /// null backends one each), and appending to a String cost twice as much per piece.
    static func line(type: String, level: Logger.Level, fields: [(key: String, value: Logger.MetadataValue)],
                     host: HostFields = .current) -> [UInt8] {
        var fields = fields
        if let dyno = host.dyno { fields.append((key: "dyno", value: .string(dyno))) }
        fields.sort { $0.key < $1.key }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var out: [UInt8] = []
        out.reserveCapacity(512)
        out.append(contentsOf: "{\"Timestamp\":".utf8)
        appendDecimal(UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec), to: &out)
        out.append(contentsOf: ",\"Type\":".utf8)
        JSONString.append(type, to: &out)
        out.append(contentsOf: host.middle)
        appendDecimal(UInt64(Self.syslogSeverity(level)), to: &out)
        out.append(contentsOf: ",\"Pid\":".utf8)
        appendDecimal(UInt64(host.pid), to: &out)
        out.append(contentsOf: ",\"Fields\":{".utf8)
        for (i, field) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONString.append(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            append(field.value, to: &out)
        }
        out.append(contentsOf: "}}\n".utf8)
        return out
    }

    /// `n` in decimal, without a String in between.
    static func appendDecimal(_ n: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: 20 digits at most
        withUnsafeMutableBytes(of: &digits) { buffer in
            var n = n, i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }

    static func syslogSeverity(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func append(_ value: Logger.MetadataValue, to out: inout [UInt8]) {
        switch value {
        case .string(let s): JSONString.append(s, to: &out)
        case .stringConvertible(let c):
            switch c {
            case let i as Int: appendSigned(i, to: &out)
            case let b as Bool: out.append(contentsOf: (b ? "true" : "false").utf8)
            case let d as Double: out.append(contentsOf: (d.isFinite ? String(d) : "null").utf8)
            default: JSONString.append(c.description, to: &out)
            }
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(v, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let d):
            out.append(UInt8(ascii: "{"))
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONString.append(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(d[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func appendSigned(_ i: Int, to out: inout [UInt8]) {
        if i < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(UInt64(i.magnitude), to: &out)
    }
}
