/// A request refused before it reached the pipeline: `reason` is the `malformed` metric tag and
/// the `Discarded=malformed_<reason>` suffix; `status` is 400, or 413 for `too_large`, 401 for
/// `unauthorized_uuid`, 403 for Sentry key checks.
public struct Malformed: Error, Equatable, Sendable {
    public var reason: String
    public var status: Int

    public init(_ reason: String, status: Int = 400) {
        self.reason = reason
        self.status = status
    }

    public static let tooLarge = Malformed("too_large", status: 413)
    public static let unauthorizedUUID = Malformed("unauthorized_uuid", status: 401)
}
