import Foundation

/// Builds multipart/form-data bodies the way crash reporters send them.
struct MultipartBody {
    var boundary = "------------------------breakwater\(UInt32.random(in: 0...UInt32.max))"
    var mixed = false
    private(set) var bytes: [UInt8] = []
    private var closed = false

    var contentType: String { "multipart/\(mixed ? "mixed" : "form-data"); boundary=\(boundary)" }

    mutating func field(_ name: String, _ value: String) {
        part(headers: "Content-Disposition: form-data; name=\"\(name)\"", body: Array(value.utf8))
    }

    mutating func json(_ name: String, _ json: String) {
        part(headers: "Content-Disposition: form-data; name=\"\(name)\"\r\nContent-Type: application/json", body: Array(json.utf8))
    }

    mutating func file(_ name: String, filename: String = "file.dmp", _ body: [UInt8]) {
        part(headers: "Content-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream", body: body)
    }

    mutating func part(headers: String, body: [UInt8]) {
        bytes += Array("--\(boundary)\r\n\(headers)\r\n\r\n".utf8) + body + Array("\r\n".utf8)
    }

    /// The bytes with the closing delimiter.
    var finished: MultipartBody {
        var copy = self
        copy.bytes += Array("--\(boundary)--\r\n".utf8)
        return copy
    }
}

enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ name: String) -> [UInt8] {
        Array(try! Data(contentsOf: folder.appendingPathComponent(name)))
    }
}
