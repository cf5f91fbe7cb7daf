import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// A steady stream of real crash reports (multipart, a real minidump) from several concurrent
/// clients, each on its own thread with blocking sockets, one connection per crash
/// (`Connection: close`), no retries. It records what every crash got back: the crash ID it was
/// given, a 503, or no answer at all, so the fault tests can hold storage and queue to it.
///
/// Each crash carries `FaultRun` (the stream's run ID) and `FaultSeq` (a number unique in the
/// run) annotations, so a crash found in storage can be traced to the request that sent it.
final class CrashStream: @unchecked Sendable {
    enum Outcome: Sendable, Equatable {
        /// 200 `CrashID=bp-<id>`.
        case acknowledged(String)
        /// 503 (`Discarded=retry_later`), with or without a `Retry-After` header.
        case retryLater(retryAfter: Bool)
        /// connect() failed: nothing was sent.
        case refused
        /// Connected and sent (or tried to), but no whole HTTP answer came back.
        case unanswered(String)
        /// Any other answer.
        case other(status: Int, body: String)
    }

    struct Record: Sendable {
        let seq: Int
        let outcome: Outcome
        /// When the connection was made (nil when refused) and when the exchange ended.
        let connected: Date?
        let finished: Date
    }

    let runID = UUID().uuidString.lowercased()
    private let clients: Int
    private let pause: Double
    private let dump: [UInt8]
    private let lock = NIOLock()
    private var _port: Int
    private var _records: [Record] = []
    private var nextSeq = 0
    private var stopping = false
    private let done = DispatchGroup()

    /// - Parameters:
    ///   - clients: concurrent senders.
    ///   - pause: seconds each sender waits between two crashes (a refused connect waits at least 0.05 s).
    init(port: Int, clients: Int, pause: Double, dump: [UInt8] = Fixtures.bytes("linux-mini.dmp")) {
        _port = port
        self.clients = clients
        self.pause = pause
        self.dump = dump
    }

    /// Where new crashes go (a restarted collector listens on a new port).
    var port: Int {
        get { lock.withLock { _port } }
        set { lock.withLock { _port = newValue } }
    }

    var records: [Record] { lock.withLock { _records } }

    /// Crashes sent (or being sent) and not answered yet.
    var inFlight: Int { lock.withLock { nextSeq - _records.count } }

    func start() {
        for i in 0..<clients {
            done.enter()
            let thread = Thread { [self] in
                defer { done.leave() }
                while !lock.withLock({ stopping }) {
                    let seq = lock.withLock { () -> Int in nextSeq += 1; return nextSeq }
                    let record = send(seq: seq)
                    lock.withLock { _records.append(record) }
                    let wait = record.outcome == .refused ? max(pause, 0.05) : pause
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                }
            }
            thread.name = "crash-stream-\(i)"
            thread.start()
        }
    }

    /// Stops sending and waits until every crash in flight has its answer (or its failure).
    func stop() async {
        lock.withLock { stopping = true }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in done.notify(queue: .global()) { c.resume() } }
    }

    /// Sends crashes for `seconds`.
    func run(for seconds: Double) async throws {
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }

    /// The shape of every outage scenario: starts sending, streams `lead` seconds, `cut`s a part,
    /// streams `window` seconds, `restore`s it, streams `lead` seconds more, then stops.
    func runThroughOutage(lead: Double, window: Double, cut: () throws -> Void, restore: () throws -> Void) async throws {
        start()
        try await run(for: lead)
        try cut()
        try await run(for: window)
        try restore()
        try await run(for: lead)
        await stop()
    }

    // MARK: one exchange

    func body(seq: Int) -> (contentType: String, bytes: [UInt8]) {
        var form = MultipartBody()
        form.field("ProductName", "Breakwater")
        form.field("Version", "1.0")
        form.field("FaultRun", runID)
        form.field("FaultSeq", String(seq))
        form.file("upload_file_minidump", filename: "crash.dmp", dump)
        let finished = form.finished
        return (finished.contentType, finished.bytes)
    }

    private func send(seq: Int) -> Record {
        let (contentType, body) = self.body(seq: seq)
        let head = "POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: breakwater-fault-suite\r\nConnection: close\r\n"
            + "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n"
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return Record(seq: seq, outcome: .refused, connected: nil, finished: Date()) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { return Record(seq: seq, outcome: .refused, connected: nil, finished: Date()) }
        let connected = Date()
        // Generous: a collector holding a crash through a whole save budget is slow, not silent.
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // A server refusing early (503 at the head) closes without reading the body: the send
        // fails then, but its answer is already on the way, so read it anyway.
        var sendError: Int32 = 0
        for chunk in [Array(head.utf8), body] where sendError == 0 {
            var offset = 0
            while offset < chunk.count {
                let n = chunk[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { sendError = errno; break }
                offset += n
            }
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        var readError: Int32 = 0
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { response += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { readError = errno }
            break
        }
        let outcome = Self.parse(response) ?? .unanswered(
            "no answer (\(response.count) bytes; send: \(String(cString: strerror(sendError))), recv: \(String(cString: strerror(readError))))")
        return Record(seq: seq, outcome: outcome, connected: connected, finished: Date())
    }

    /// The outcome of a whole HTTP/1.1 answer; nil when it is not whole.
    static func parse(_ bytes: [UInt8]) -> Outcome? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let headLines = text[..<split.lowerBound].split(separator: "\r\n").map(String.init)
        guard let statusLine = headLines.first, statusLine.hasPrefix("HTTP/1."),
              let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(text[split.upperBound...])
        if let length = headers["content-length"].flatMap(Int.init), body.utf8.count < length { return nil }
        switch status {
        case 200 where body.hasPrefix("CrashID=bp-"):
            return .acknowledged(String(body.dropFirst("CrashID=bp-".count).prefix { !$0.isWhitespace }))
        case 503:
            return .retryLater(retryAfter: headers["retry-after"] != nil)
        default:
            return .other(status: status, body: String(body.prefix(200)))
        }
    }
}

extension Array where Element == CrashStream.Record {
    /// Crash IDs the collector acknowledged, in the order the answers came.
    var acknowledged: [String] {
        compactMap { if case .acknowledged(let id) = $0.outcome { return id } else { return nil } }
    }

    /// Requests that reached the collector (connect succeeded).
    var sent: Int { filter { $0.connected != nil }.count }
    var refused: Int { filter { $0.outcome == .refused }.count }
    var retryLater: Int { filter { if case .retryLater = $0.outcome { return true } else { return false } }.count }
    var retryLaterWithoutHeader: Int { filter { $0.outcome == .retryLater(retryAfter: false) }.count }
    var unanswered: [CrashStream.Record] { filter { if case .unanswered = $0.outcome { return true } else { return false } } }
    var others: [CrashStream.Record] { filter { if case .other = $0.outcome { return true } else { return false } } }
}
