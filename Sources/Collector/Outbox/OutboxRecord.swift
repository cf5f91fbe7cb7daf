import Foundation

/// What the outbox knows of one acknowledged crash that is not yet both stored and (when its
/// throttle result queues it) queued. Persisted as `<crash id>.state` next to the crash's body
/// (`OutboxCrashFile`); see `Outbox` for the rules that combine the two files.
public struct OutboxRecord: Sendable, Equatable {
    public enum State: String, Sendable {
        /// The crash is only in the outbox: it still has to be stored (then queued when `queue`).
        case store
        /// The crash is stored; its ID still has to be confirmed by the queue.
        case publish
    }

    public var crashID: String
    public var state: State
    /// Whether the crash is to be queued once stored (accepted, not deferred).
    public var queue: Bool
    /// Wall-clock seconds (Unix time) when the collector received the crash.
    public var receivedAt: Double
    public var attempts = 0
    /// Failed attempts made while the backend's own check passed: only these count toward
    /// `SPOOL_MAX_ATTEMPTS`, so a long outage never quarantines anything.
    public var strikes = 0
    public var lastError = ""
    /// Wall-clock seconds of the next attempt (the per-record backoff).
    public var nextAttempt: Double = 0
    /// Bytes on disk for this record (body and state file).
    public var bytes = 0

    public init(crashID: String, state: State, queue: Bool, receivedAt: Double) {
        self.crashID = crashID
        self.state = state
        self.queue = queue
        self.receivedAt = receivedAt
    }

    /// The `.state` file: one JSON object.
    var encoded: [UInt8] {
        let object: [String: JSONValue] = [
            "crash_id": .string(crashID), "state": .string(state.rawValue), "queue": .bool(queue),
            "received_at": .number(receivedAt), "attempts": .number(Double(attempts)), "strikes": .number(Double(strikes)),
            "last_error": .string(lastError), "next_attempt": .number(nextAttempt),
        ]
        return Array((JSONValue.object(object).serialized() + "\n").utf8)
    }

    /// nil for anything that is not a whole state file of a valid crash ID.
    static func decode(_ bytes: [UInt8]) -> OutboxRecord? {
        guard case .object(let o)? = try? JSONValue.parse(bytes[...]),
              case .string(let id)? = o["crash_id"], CrashID.isValid(id),
              case .string(let s)? = o["state"], let state = State(rawValue: s),
              case .bool(let queue)? = o["queue"], case .number(let received)? = o["received_at"] else { return nil }
        var record = OutboxRecord(crashID: id, state: state, queue: queue, receivedAt: received)
        if case .number(let n)? = o["attempts"] { record.attempts = Int(n) }
        if case .number(let n)? = o["strikes"] { record.strikes = Int(n) }
        if case .string(let e)? = o["last_error"] { record.lastError = e }
        if case .number(let n)? = o["next_attempt"] { record.nextAttempt = n }
        return record
    }
}
