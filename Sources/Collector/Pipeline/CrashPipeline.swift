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

    public init(throttler: Throttler, saver: CrashSaver, publisher: QueuePublisher, telemetry: Telemetry) {
        self.throttler = throttler
        self.saver = saver
        self.publisher = publisher
        self.telemetry = telemetry
    }

    /// - Parameter clientCrashID: an already authorized client-chosen crash ID.
    public func process(_ report: CrashReport, clientCrashID: String? = nil, receivedAt: Date = Date()) -> PipelineOutcome {
        var start = MonotonicClock.now()
        let decision = throttler.throttle(report)
        var elapsed = MonotonicClock.now() - start
        telemetry.time(MetricCatalog.throttleTime, nanoseconds: elapsed)
        telemetry.stage("throttle", crashID: clientCrashID, nanoseconds: elapsed,
                        ["rule": .string(decision.rule), "result": .string(decision.result.rawValue)])
        telemetry.count(MetricCatalog.throttle, [("result", decision.result.rawValue)])
        telemetry.count(MetricCatalog.throttleRule, [("rule", decision.rule)])

        if decision.result == .reject {
            return .rejected(rule: decision.rule)
        }
        start = MonotonicClock.now()
        let crashID = clientCrashID ?? CrashID.make(result: decision.result, date: receivedAt)
        telemetry.stage("identify", crashID: crashID, nanoseconds: MonotonicClock.now() - start,
                        ["client_chosen": .stringConvertible(clientCrashID != nil)])
        if decision.result == .fakeaccept { return .fakeaccepted(crashID: crashID, rule: decision.rule) }

        let stored = StoredCrash(crashID: crashID,
                                 rawCrash: RawCrash.json(of: report, crashID: crashID, rule: decision.rule, receivedAt: receivedAt),
                                 dumps: report.dumps)
        start = MonotonicClock.now()
        let saved = saver.save(stored, queue: decision.result.isQueued)
        telemetry.stage("store", crashID: crashID, nanoseconds: MonotonicClock.now() - start,
                        failure: saved == .stored ? nil : "\(saved)")
        switch saved {
        case .failed: return .retryLater(crashID: crashID, rule: decision.rule)
        case .spooled: return .spooled(crashID: crashID, decision: decision)
        case .stored: break
        }
        guard decision.result.isQueued else { return .stored(crashID: crashID, decision: decision, queued: nil) }
        start = MonotonicClock.now()
        let published = publisher.publish(crashID)
        elapsed = MonotonicClock.now() - start
        telemetry.stage("publish", crashID: crashID, nanoseconds: elapsed, failure: published ? nil : "publish_backlog")
        // The null queue takes every ID and puts it nowhere: not queued.
        let queued = published && publisher.queue.queues
        return .stored(crashID: crashID, decision: decision, queued: queued)
    }
}
