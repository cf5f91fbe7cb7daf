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
        let middle: String
        static let current = HostFields(hostname: ProcessInfo.processInfo.hostName,
                                        pid: ProcessInfo.processInfo.processIdentifier,
                                        dyno: ProcessInfo.processInfo.environment["DYNO"])

        init(hostname: String, pid: Int32, dyno: String?) {
            self.hostname = hostname
            self.pid = pid
            self.dyno = dyno
            var middle = ",\"Logger\":\"breakwater\",\"Hostname\":"
            JSONString.append(hostname, to: &middle)
            middle += ",\"EnvVersion\":\"2.0\",\"Severity\":"
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

    /// One mozlog line, newline included. `fields` in any order (they are written sorted by name)
    /// and without duplicates; the dyno, when there is one, is added.
    static func line(type: String, level: Logger.Level, fields: [(key: String, value: Logger.MetadataValue)],
                     host: HostFields = .current) -> String {
        var fields = fields
        if let dyno = host.dyno { fields.append((key: "dyno", value: .string(dyno))) }
        fields.sort { $0.key < $1.key }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var out = "{\"Timestamp\":"
        out.reserveCapacity(512)
        out += String(UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
        out += ",\"Type\":"
        JSONString.append(type, to: &out)
        out += host.middle
        out += String(Self.syslogSeverity(level))
        out += ",\"Pid\":"
        out += String(host.pid)
        out += ",\"Fields\":{"
        for (i, field) in fields.enumerated() {
            if i > 0 { out += "," }
            JSONString.append(field.key, to: &out)
            out += ":"
            append(field.value, to: &out)
        }
        out += "}}\n"
        return out
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

    static func append(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let s): JSONString.append(s, to: &out)
        case .stringConvertible(let c):
            switch c {
            case let b as Bool: out += b ? "true" : "false"
            case let i as Int: out += String(i)
            case let d as Double: out += d.isFinite ? String(d) : "null"
            default: JSONString.append(c.description, to: &out)
            }
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                append(v, to: &out)
            }
            out += "]"
        case .dictionary(let d):
            out += "{"
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONString.append(key, to: &out)
                out += ":"
                append(d[key]!, to: &out)
            }
            out += "}"
        }
    }
}
