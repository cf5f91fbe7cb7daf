import NIOCore

/// A dump as received: its sanitized name and its bytes, kept opaque.
public struct CrashDump: Sendable {
    public var name: String
    public var bytes: ByteBuffer

    public init(name: String, bytes: ByteBuffer) {
        self.name = name
        self.bytes = bytes
    }
}

/// One decoded crash, whatever endpoint it came from: what the throttler looks at and what storage keeps.
public struct CrashReport: Sendable {
    /// Annotations as received (after redaction); the throttler's fields.
    public var annotations: [String: JSONValue]
    public var dumps: [CrashDump]
    /// `metadata.payload`: multipart, json, sentry_store, sentry_envelope, sentry_minidump, generic.
    public var payloadKind: String
    public var payloadCompressed: Bool
    /// Bytes on the wire.
    public var payloadSize: Int
    public var userAgent: String
    public var collectorNotes: [String]

    public init(annotations: [String: JSONValue] = [:], dumps: [CrashDump] = [], payloadKind: String,
                payloadCompressed: Bool = false, payloadSize: Int = 0, userAgent: String = "",
                collectorNotes: [String] = []) {
        self.annotations = annotations
        self.dumps = dumps
        self.payloadKind = payloadKind
        self.payloadCompressed = payloadCompressed
        self.payloadSize = payloadSize
        self.userAgent = userAgent
        self.collectorNotes = collectorNotes
    }

    /// An annotation as a string, the way throttle rules compare it.
    public func field(_ name: String) -> String? { annotations[name]?.stringValue }
}
