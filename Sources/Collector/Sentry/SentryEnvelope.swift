import NIOCore

/// A Sentry envelope (develop.sentry.dev/sdk/envelopes): a JSON header line, then items, each a
/// JSON header line and a payload of `length` bytes, or up to the end of the line without `length`.
public struct SentryEnvelope: Sendable {
    public struct Item: Sendable {
        public var headers: [String: JSONValue]
        public var payload: ByteBuffer

        public var type: String { headers["type"]?.stringValue ?? "" }
    }

    public var headers: [String: JSONValue]
    public var items: [Item]

    /// - Parameters:
    ///   - limits: the JSON limits of its header lines, whose parse is reserved from `memory`.
    public static func parse(_ body: ByteBuffer, maxItems: Int, limits: DecodeLimits, memory: MemoryLease) throws -> SentryEnvelope {
        var rest = body
        guard let headerLine = line(&rest) else { throw Malformed("invalid_envelope") }
        let headers = try object(headerLine, limits, memory)
        var items: [Item] = []
        while let itemLine = line(&rest) {
            // Blank lines between items (an extra newline after a payload) carry nothing.
            if itemLine.readableBytes == 0 { continue }
            guard items.count < maxItems else { throw Malformed("too_many_items") }
            let itemHeaders = try object(itemLine, limits, memory)
            guard case .string(let type)? = itemHeaders["type"], !type.isEmpty else { throw Malformed("invalid_envelope") }
            let payload: ByteBuffer
            switch itemHeaders["length"] {
            case nil, .null?:
                payload = line(&rest) ?? ByteBuffer()
            case .number(let n)? where n >= 0 && n.rounded() == n:
                guard n <= Double(rest.readableBytes), let slice = rest.readSlice(length: Int(n)) else {
                    throw Malformed("item_too_long")
                }
                payload = slice
                if rest.readableBytesView.first == UInt8(ascii: "\n") { rest.moveReaderIndex(forwardBy: 1) }
            default:
                throw Malformed("invalid_envelope")
            }
            items.append(Item(headers: itemHeaders, payload: payload))
        }
        return SentryEnvelope(headers: headers, items: items)
    }

    /// The bytes up to the next newline (consumed), or to the end; nil when nothing is left.
    private static func line(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        guard buffer.readableBytes > 0 else { return nil }
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            return buffer.readSlice(length: buffer.readableBytes)
        }
        let line = buffer.readSlice(length: end - buffer.readerIndex)
        buffer.moveReaderIndex(forwardBy: 1)
        return line
    }

    private static func object(_ line: ByteBuffer, _ limits: DecodeLimits, _ memory: MemoryLease) throws -> [String: JSONValue] {
        guard case .object(let fields) = try limits.json(line.readableBytesView, memory: memory, invalid: "invalid_envelope") else {
            throw Malformed("invalid_envelope")
        }
        return fields
    }
}
