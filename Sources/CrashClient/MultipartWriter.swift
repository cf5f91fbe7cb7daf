/// Builds a `multipart/form-data` body the way crash reporters send one: text fields, an optional
/// JSON part, and file parts for dumps.
public struct MultipartWriter {
    public let boundary: String
    public private(set) var body: [UInt8] = []

    public init(boundary: String = "------------------------breakwater" + String(UInt64.random(in: 0...UInt64.max), radix: 16)) {
        self.boundary = boundary
    }

    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    public mutating func field(_ name: String, _ value: String) {
        part("Content-Disposition: form-data; name=\"\(name)\"", Array(value.utf8))
    }

    public mutating func json(_ name: String, _ json: String) {
        part("Content-Disposition: form-data; name=\"\(name)\"\r\nContent-Type: application/json", Array(json.utf8))
    }

    public mutating func file(_ name: String, _ bytes: [UInt8]) {
        part("Content-Disposition: form-data; name=\"\(name)\"; filename=\"\(name).dmp\"\r\nContent-Type: application/octet-stream", bytes)
    }

    /// The body with its closing delimiter.
    public func finished() -> [UInt8] { body + Array("--\(boundary)--\r\n".utf8) }

    private mutating func part(_ headers: String, _ bytes: [UInt8]) {
        body += Array("--\(boundary)\r\n\(headers)\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n".utf8)
    }
}
