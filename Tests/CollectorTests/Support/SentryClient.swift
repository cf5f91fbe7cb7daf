import Foundation

/// A request captured from a real client (Tests/Fixtures/requests/*.http): head and body bytes as sent.
struct CapturedRequest {
    let path: String
    let headers: [(String, String)]
    let body: [UInt8]

    init(_ name: String) {
        let bytes = Fixtures.bytes("requests/" + name)
        let separator = Array("\r\n\r\n".utf8)
        let end = (0...(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == separator }!
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        path = String(lines[0].split(separator: " ")[1])
        headers = lines.dropFirst().map { line in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        body = Array(bytes[(end + 4)...])
    }

    /// The headers to resend: the client's own, without those the HTTP client sets itself.
    var resendHeaders: [(String, String)] {
        headers.filter { !["host", "content-length", "connection"].contains($0.0.lowercased()) }
    }
}

/// Runs the real Python clients (Tests/CollectorTests/Clients/send_event.py).
enum PythonClient {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Clients/send_event.py").path

    /// Sends one event; returns the event id the client chose.
    static func send(_ kind: String, dsn: String, arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // scripts/services/python-clients.sh exports BREAKWATER_PYTHON when it had to make a virtualenv.
        let python = ProcessInfo.processInfo.environment["BREAKWATER_PYTHON"] ?? "python3"
        process.arguments = [python, script, kind, dsn] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        struct Failed: Error, CustomStringConvertible { let description: String }
        guard process.terminationStatus == 0,
              let line = try JSONSerialization.jsonObject(with: output) as? [String: Any],
              let id = line["event_id"] as? String else {
            throw Failed(description: "\(kind) failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self))")
        }
        return id
    }
}
