import Foundation
import Logging
import Telemetry

/// What happened to a decoded crash after throttle → identify → store → publish.
public enum PipelineOutcome: Sendable, Equatable {
    /// Stored (accept, defer) and, for accept, queued when `queued` is true.
    case stored(crashID: String, decision: ThrottleDecision, queued: Bool?)
    /// Answered with a crash ID but kept nowhere.
    case fakeaccepted(crashID: String, rule: String)
    case rejected(rule: String)
    /// Storage was down: kept in the local spool, to be stored (and queued) by the drainer.
    case spooled(crashID: String, decision: ThrottleDecision)
    /// Storage could not take it within the budget: the client must retry.
    case retryLater(crashID: String, rule: String)

    public var auditOutcome: AuditRecord.Outcome {
        switch self {
        case .stored(_, let d, _): return d.result == .defer ? .deferred : .accepted
        case .fakeaccepted: return .fakeaccepted
        case .rejected: return .rejected
        case .spooled: return .spooled
        case .retryLater: return .retry_later
        }
    }
}

/// The plain synchronous part of every endpoint, run on a worker thread.
public final class CrashPipeline: Sendable {
    public let throttler: Throttler
    public let saver: CrashSaver
    public let publisher: QueuePublisher
    private let telemetry: Telemetry
    private let logger: Logger

    public init(throttler: Throttler, saver: CrashSaver, publisher: QueuePublisher, telemetry: Telemetry) {
        self.throttler = throttler
        self.saver = saver
        self.publisher = publisher
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.pipeline")
    }

    /// - Parameter clientCrashID: an already authorized client-chosen crash ID.
    public func process(_ report: CrashReport, clientCrashID: String? = nil, receivedAt: Date = Date()) -> PipelineOutcome {
        let decision = telemetry.timed(MetricCatalog.throttleTime) { throttler.throttle(report) }
        telemetry.count(MetricCatalog.throttle, [("result", decision.result.rawValue)])
        telemetry.count(MetricCatalog.throttleRule, [("rule", decision.rule)])

        if decision.result == .reject {
            logger.debug("rejected: matched by \(decision.rule); returned REJECT")
            return .rejected(rule: decision.rule)
        }
        let crashID = clientCrashID ?? CrashID.make(result: decision.result, date: receivedAt)
        logger.debug("\(crashID): matched by \(decision.rule); returned \(decision.result.rawValue.uppercased())")
        if decision.result == .fakeaccept { return .fakeaccepted(crashID: crashID, rule: decision.rule) }

        let stored = StoredCrash(crashID: crashID,
                                 rawCrash: RawCrash.json(of: report, crashID: crashID, rule: decision.rule, receivedAt: receivedAt),
                                 dumps: report.dumps)
        switch saver.save(stored, queue: decision.result.isQueued) {
        case .failed: return .retryLater(crashID: crashID, rule: decision.rule)
        case .spooled: return .spooled(crashID: crashID, decision: decision)
        case .stored: break
        }
        let queued: Bool? = decision.result.isQueued ? publisher.publish(crashID) : nil
        return .stored(crashID: crashID, decision: decision, queued: queued)
    }
}
