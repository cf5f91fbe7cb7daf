import CrashClient
import Foundation

/// Stock Crashpad's upload, byte for byte in shape (crashpad/util/net/http_multipart_builder.cc,
/// handler/crash_report_upload_thread.cc, util/net/http_transport_socket.cc):
/// `POST <path>?guid=<client id>` with `Transfer-Encoding: chunked` and no `Content-Length`, the
/// whole multipart body gzip-compressed (`Content-Encoding: gzip`), the boundary
/// `---MultipartBoundary-<32 characters>---`, annotation parts with no `Content-Type`, and the dump
/// as `upload_file_minidump` with filename `<report uuid>.dmp`. Crashpad treats only a 200 as
/// success and keeps the whole response body as the report's server ID.
struct CrashpadRequest {
    var path = "/submit"
    var clientID = "2c0e1bd4-6f0e-4e36-9c2f-5e0d9b8e4a11"
    var reportID = UUID().uuidString.lowercased()
    var annotations: [(String, String)] = [("prod", "Crashpad_Test"), ("ver", "1.2.3"), ("plat", "Linux"), ("ptype", "browser")]
    var dump: [UInt8]
    /// Bytes per HTTP chunk of the compressed body.
    var chunkSize = 64 * 1024
    let boundary = "---MultipartBoundary-" + String((0..<32).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement()! }) + "---"

    /// The multipart body before compression.
    var multipart: [UInt8] {
        var body: [UInt8] = []
        for (name, value) in annotations {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        body += Array(("--\(boundary)\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"\(reportID).dmp\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\n").utf8)
        body += dump + Array("\r\n--\(boundary)--\r\n".utf8)
        return body
    }

    /// The gzip-compressed body.
    var compressed: [UInt8] { Deflater.compress(multipart) }

    /// The whole request: head, then the compressed body in chunks of `chunkSize`, then the last chunk.
    var bytes: [UInt8] {
        var out = Array(("POST \(path)?guid=\(clientID) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Crashpad/0.8.0 libcurl/7.88.1\r\n"
            + "Accept: */*\r\nContent-Type: multipart/form-data; boundary=\(boundary)\r\nContent-Encoding: gzip\r\n"
            + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").utf8)
        let body = compressed
        for start in stride(from: 0, to: body.count, by: chunkSize) {
            let chunk = body[start..<min(start + chunkSize, body.count)]
            out += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
        }
        return out + Array("0\r\n\r\n".utf8)
    }
}
