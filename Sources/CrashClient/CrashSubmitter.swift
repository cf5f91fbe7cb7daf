import AsyncHTTPClient
import Foundation
import NIOCore

/// Posts crash reports to a collector the way crash reporters do (multipart/form-data, gzip on or
/// off) and returns its answers. `breakwater submit` and the load and fault tests use it.
public struct CrashSubmitter: Sendable {
    public struct Answer: Sendable {
        public let label: String
        /// The HTTP status, or 0 when no answer came (the body then holds the error).
        public let status: Int
        public let body: String

        /// `label status body` on one line, as `breakwater submit` prints it.
        public var line: String {
            "\(label) \(status) \(body.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    public let url: String
    public let gzip: Bool
    public let userAgent: String
    /// Seconds to wait for each answer, connecting included (the client retries refused connections until then).
    public let timeout: Double
    private let client: HTTPClient

    public init(url: String, gzip: Bool = false, userAgent: String = "breakwater-submit/1.0", timeout: Double = 60,
                client: HTTPClient = .shared) {
        self.url = url
        self.gzip = gzip
        self.userAgent = userAgent
        self.timeout = timeout
        self.client = client
    }

    /// Posts one crash; never throws: a failed request is an answer with status 0.
    public func submit(_ crash: SubmittedCrash) async -> Answer {
        let form = crash.form()
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: form.contentType)
        request.headers.add(name: "User-Agent", value: userAgent)
        var body = form.finished()
        if gzip {
            request.headers.add(name: "Content-Encoding", value: "gzip")
            body = Deflater.compress(body)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let text = try await response.body.collect(upTo: 1 << 20)
            return Answer(label: crash.label, status: Int(response.status.code), body: String(buffer: text))
        } catch {
            return Answer(label: crash.label, status: 0, body: "\(error)")
        }
    }

    /// Posts crashes `0..<count` made by `make`: one after another, or, with a `rate` (crashes per
    /// second), each at its scheduled time whether or not earlier ones were answered (open loop,
    /// like real clients). `onAnswer` sees every answer as it arrives; the answers are returned in order.
    public func run(count: Int, rate: Double? = nil, make: @escaping @Sendable (Int) throws -> SubmittedCrash,
                    onAnswer: @escaping @Sendable (Answer) -> Void = { _ in }) async throws -> [Answer] {
        guard let rate, rate > 0 else {
            var answers: [Answer] = []
            for i in 0..<count {
                let answer = await submit(try make(i))
                onAnswer(answer)
                answers.append(answer)
            }
            return answers
        }
        let start = ContinuousClock.now
        return try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
            for i in 0..<count {
                let crash = try make(i)
                try await Task.sleep(until: start + .seconds(Double(i) / rate), clock: .continuous)
                group.addTask {
                    let answer = await submit(crash)
                    onAnswer(answer)
                    return (i, answer)
                }
            }
            var answers = [Answer?](repeating: nil, count: count)
            for try await (i, answer) in group { answers[i] = answer }
            return answers.map { $0! }
        }
    }
}
