import Foundation
import NIOConcurrencyHelpers

/// `/__heartbeat__`: asks each backend for its health, cached for a few seconds so a busy
/// load balancer cannot turn probes into load on storage.
public final class HeartbeatResource: Sendable {
    public typealias Check = @Sendable () -> HealthStatus
    private let checks: [(name: String, check: Check)]
    private let cacheSeconds: Double
    private let cached = NIOLockedValueBox<(at: Date, response: CollectorResponse)?>(nil)

    public init(checks: [(name: String, check: Check)], cacheSeconds: Double = 3) {
        self.checks = checks
        self.cacheSeconds = cacheSeconds
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        if let hit = cached.withLockedValue({ $0 }), Date().timeIntervalSince(hit.at) < cacheSeconds { return hit.response }
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
        cached.withLockedValue { $0 = (Date(), response) }
        return response
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
