import Crypto
import Foundation

/// `POST /submit`: Breakpad, Crashpad and Mozilla crash reports, answered in their plain-text protocol.
public struct BreakpadResource: Sendable {
    let intake: CrashIntake
    let decoder: BreakpadDecoder
    /// Bearer token allowing a client-chosen crash ID (`uuid` annotation); empty refuses them all.
    let submitterToken: String
    let endpoint: String

    public init(intake: CrashIntake, decoder: BreakpadDecoder, submitterToken: String, endpoint: String = "breakpad") {
        self.intake = intake
        self.decoder = decoder
        self.submitterToken = submitterToken
        self.endpoint = endpoint
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        intake.handle(endpoint: endpoint, request: request, busy: .retryLater, decode: decode, respondMalformed: { m in
            m.status == 413 ? .tooLarge : .text(m.status, "Discarded=" + (m.status == 400 ? "malformed_" : "") + m.reason)
        }, respond: { outcome, _ in
            switch outcome {
            case .stored(let id, _, _), .fakeaccepted(let id, _), .spooled(let id, _): return .text(200, "CrashID=bp-\(id)\n")
            case .rejected(let rule): return .text(200, "Discarded=rule_\(rule)")
            case .retryLater: return .retryLater
            }
        })
    }

    private func decode(_ request: CollectorRequest) throws -> CrashIntake.Decoded {
        var report = try decoder.decode(request)
        guard let uuid = report.annotations.removeValue(forKey: "uuid") else { return CrashIntake.Decoded(report) }
        guard Self.authorized(request.header("Authorization"), token: submitterToken) else { throw Malformed.unauthorizedUUID }
        guard case .string(let id) = uuid, CrashID.isValidFromClient(id) else { throw Malformed("invalid_uuid") }
        return CrashIntake.Decoded(report, clientCrashID: id)
    }

    /// Constant-time comparison of `Authorization: Bearer <token>` with the configured token.
    static func authorized(_ header: String?, token: String) -> Bool {
        guard !token.isEmpty, let header, header.hasPrefix("Bearer ") else { return false }
        let given = SHA256.hash(data: Data(header.dropFirst(7).utf8))
        let expected = SHA256.hash(data: Data(token.utf8))
        // Comparing fixed-size digests byte by byte, without early exit, leaks nothing about the token.
        return zip(given, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
