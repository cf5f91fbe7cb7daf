import Foundation
import Telemetry

/// The telemetry every crash endpoint shares: `incoming_crash`, `decode.time`, `crash_size`,
/// `malformed`, `request.time` and the one audit line per crash. Endpoints supply how to decode
/// and how to answer in their client's protocol.
public final class CrashIntake: Sendable {
    public let pipeline: CrashPipeline
    public let telemetry: Telemetry

    public init(pipeline: CrashPipeline, telemetry: Telemetry) {
        self.pipeline = pipeline
        self.telemetry = telemetry
    }

    /// What an endpoint's decode step hands on: the crash, and a client crash ID already authorized.
    public struct Decoded {
        public var report: CrashReport
        public var clientCrashID: String?
        /// Extra audit fields (Sentry event id, project).
        public var auditExtra: [String: String]

        public init(_ report: CrashReport, clientCrashID: String? = nil, auditExtra: [String: String] = [:]) {
            self.report = report
            self.clientCrashID = clientCrashID
            self.auditExtra = auditExtra
        }
    }

    /// - Parameter busy: the endpoint's "retry later" answer, given when decoding would pass
    ///   `MAX_INFLIGHT_BYTES` (a decompressed body or dump counts against it).
    public func handle(endpoint: String, request: CollectorRequest, busy: CollectorResponse,
                       decode: (CollectorRequest) throws -> Decoded,
                       respondMalformed: (Malformed) -> CollectorResponse,
                       respond: (PipelineOutcome, Decoded) -> CollectorResponse) -> CollectorResponse {
        let start = MonotonicClock.now()
        telemetry.count(MetricCatalog.incomingCrash, ("endpoint", endpoint))
        var audit = AuditRecord(endpoint: endpoint, outcome: .malformed, payloadSize: request.body.readableBytes)
        let response: CollectorResponse
        do {
            let decodeStart = MonotonicClock.now()
            let decoded: Decoded
            do {
                decoded = try decode(request)
            } catch {
                let elapsed = MonotonicClock.now() - decodeStart
                telemetry.time(MetricCatalog.decodeTime, nanoseconds: elapsed)
                telemetry.stage("decode", crashID: nil, nanoseconds: elapsed, failure: (error as? Malformed)?.reason ?? "\(error)",
                                ["endpoint": .string(endpoint)])
                throw error
            }
            let decodeElapsed = MonotonicClock.now() - decodeStart
            telemetry.time(MetricCatalog.decodeTime, nanoseconds: decodeElapsed)
            telemetry.stage("decode", crashID: nil, nanoseconds: decodeElapsed,
                            ["endpoint": .string(endpoint), "dumps": .array(decoded.report.dumps.map { .string($0.name) })])
            let report = decoded.report
            telemetry.histogram(MetricCatalog.crashSize, Double(report.payloadSize),
                                ("payload", report.payloadCompressed ? "compressed" : "uncompressed"))
            let outcome = pipeline.process(report, clientCrashID: decoded.clientCrashID)
            response = respond(outcome, decoded)
            audit.outcome = outcome.auditOutcome
            audit.dumps = report.dumps.map(\.name)
            audit.extra = decoded.auditExtra
            switch outcome {
            case let .stored(id, decision, queued):
                audit.crashID = id
                audit.rule = decision.rule
                audit.queued = queued
            case let .fakeaccepted(id, rule):
                audit.crashID = id
                audit.rule = rule
            case let .spooled(id, decision):
                audit.crashID = id
                audit.rule = decision.rule
                audit.reason = "storage_unavailable"
            case let .rejected(rule):
                audit.rule = rule
            case let .retryLater(id, rule):
                audit.crashID = id
                audit.rule = rule
                audit.reason = "storage_unavailable"
            }
        } catch is InflightBytes.Exhausted {
            telemetry.count(MetricCatalog.overload, ("reason", "memory"))
            audit.outcome = .retry_later
            audit.reason = "memory"
            response = busy
        } catch let malformed as Malformed {
            telemetry.count(MetricCatalog.malformed, ("reason", malformed.reason))
            audit.outcome = malformed.status == 413 ? .too_large : malformed.status == 401 ? .unauthorized
                : malformed.status == 403 ? .forbidden : .malformed
            audit.reason = malformed.reason
            response = respondMalformed(malformed)
        } catch {
            telemetry.count(MetricCatalog.malformed, ("reason", "invalid_payload_structure"))
            audit.reason = "invalid_payload_structure"
            response = respondMalformed(Malformed("invalid_payload_structure"))
        }
        let elapsed = MonotonicClock.now() - start
        telemetry.time(MetricCatalog.requestTime, nanoseconds: elapsed)
        audit.status = response.status
        audit.durationMs = Double(elapsed) / 1_000_000
        telemetry.audit(audit)
        return response
    }
}
