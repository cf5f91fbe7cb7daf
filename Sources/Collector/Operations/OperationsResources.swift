import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// `/__heartbeat__`, answered without a worker: a probe starts a run of the checks on the
/// heartbeat's own queue (unless one is running, or one finished within `minInterval`, so probes
/// never turn into load on storage) and is answered with its result if it finishes within
/// `probeWait`, else with the latest result. Either way within 100 ms, always the JSON body
/// `{"status": "ok"|"error", "checks": {…}}`, however busy the workers are.
public final class HeartbeatResource: Sendable {
    public typealias Check = @Sendable () -> HealthStatus
    private let checks: [(name: String, check: Check)]
    private let minInterval: Double
    private let probeWait: Double
    private let queue = DispatchQueue(label: "breakwater.heartbeat")

    private struct State {
        /// The latest result and when it was computed (nil before the first run).
        var latest: (at: Date, response: CollectorResponse)?
        var running = false
        var waiting: [@Sendable (CollectorResponse) -> Void] = []
    }
    private let state = Mutex(State())

    public init(checks: [(name: String, check: Check)], minInterval: Double = 0.25, probeWait: Double = 0.08) {
        self.checks = checks
        self.minInterval = minInterval
        self.probeWait = probeWait
    }

    /// Answers a probe through `answer`, exactly once, from any thread.
    public func probe(_ request: CollectorRequest, answer: @escaping @Sendable (CollectorResponse) -> Void) {
        let once = NIOLockedValueBox<(@Sendable (CollectorResponse) -> Void)?>(answer)
        let reply: @Sendable (CollectorResponse) -> Void = { response in
            once.withLockedValue { f in defer { f = nil }; return f }?(response)
        }
        // nil: a result young enough is there; else whether this probe starts the run.
        let starts: Bool? = state.withLock { state in
            if !state.running, let latest = state.latest, Date().timeIntervalSince(latest.at) < minInterval { return nil }
            state.waiting.append(reply)
            defer { state.running = true }
            return !state.running
        }
        guard let starts else { return answer(latest) }
        if starts { queue.async { self.run() } }
        // Not on `queue`: that one is busy running the checks.
        DispatchQueue.global().asyncAfter(deadline: .now() + probeWait) { [self] in reply(latest) }
    }

    /// The latest result; before the first run of the checks, an error with no checks.
    public var latest: CollectorResponse {
        state.withLock { $0.latest?.response } ?? .json(503, #"{"checks":{},"status":"error"}"#)
    }

    private func run() {
        var failing = false
        var fields: [String: JSONValue] = [:]
        for (name, check) in checks {
            switch check() {
            case .ok: fields[name] = .string("ok")
            case .warning(let detail): fields[name] = .object(["status": .string("warning"), "detail": .string(detail)])
            case .error(let detail):
                failing = true
                fields[name] = .object(["status": .string("error"), "detail": .string(detail)])
            }
        }
        let body = JSONValue.object(["status": .string(failing ? "error" : "ok"), "checks": .object(fields)]).serialized()
        let response = CollectorResponse.json(failing ? 503 : 200, body)
        let waiting = state.withLock { state in
            state.latest = (Date(), response)
            state.running = false
            defer { state.waiting = [] }
            return state.waiting
        }
        for reply in waiting { reply(response) }
    }
}

/// `/__version__`: the contents of `version.json` read once at start-up, or `{}`.
public struct VersionResource: Sendable {
    let body: String

    public init(path: String) {
        if let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
           (try? JSONValue.parse(Array(data))) != nil {
            body = text
        } else {
            body = "{}"
        }
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse { .json(200, body) }
}
