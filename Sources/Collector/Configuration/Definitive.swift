/// A failure a backend can classify: definitive when the service answered and refuses the request
/// for good (an S3 4xx other than 408/429, a refused AMQP login), so repeating it cannot succeed.
/// Everything else (connection refused, timeout, DNS, 5xx) is an outage that may pass. The outbox
/// quarantines a crash storage refuses definitively; start-up stops only on a definitive failure.
public protocol DefinitiveFailure: Error {
    var isDefinitive: Bool { get }
}

extension Error {
    /// False for errors that do not classify themselves: presume an outage, keep the crash.
    public var isDefinitive: Bool { (self as? any DefinitiveFailure)?.isDefinitive ?? false }
}
