import Foundation
import NIOCore

/// A Google API answer other than 2xx: the status and the message of Google's JSON error body.
/// Carries no credentials, so it is safe to log whole.
public struct GoogleAPIError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let status: Int
    /// `error.message` of the body (`error.status`, e.g. `NOT_FOUND`, when there is no message).
    public let message: String

    public init(operation: String, status: Int, body: ByteBuffer) {
        self.operation = operation
        self.status = status
        let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let error = json?["error"] as? [String: Any]
        let text = (error?["message"] as? String) ?? (error?["status"] as? String) ?? ""
        // Bounded: an error page from a proxy can be large.
        message = String(text.prefix(300))
    }

    /// Wrong name or credentials the service refuses: retrying will not help, so at start-up it is
    /// a configuration error rather than an outage.
    public var isRejection: Bool { [400, 401, 403, 404].contains(status) }

    /// Whether `error` (from a request or its token) is a refusal rather than an outage.
    static func isRejection(_ error: Error) -> Bool {
        (error as? GoogleAPIError)?.isRejection ?? (error as? GoogleAuthError)?.rejected ?? false
    }

    public var description: String {
        "\(operation): HTTP \(status)" + (message.isEmpty ? "" : " (\(message))")
    }
}
