import Foundation
import NIOCore
import Synchronization
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// The local outbox (`SPOOL_DIR`): every acknowledged crash that is not yet both stored and, when
/// its throttle result queues it, queued, has exactly one durable record here, written and fsynced
/// before the client is answered. Only failures write to it: the synchronous path stores and
/// publishes directly when both work. `OutboxMover` works it.
///
/// On disk, per crash:
/// * `<id>.crash`: the crash's body (`OutboxCrashFile`), while it still has to be stored.
/// * `<id>.state`: the record (`OutboxRecord`): state, attempts, last error, next attempt.
///
/// Both are written with `DurableFile` (temporary name, fsync, rename, folder fsync), so a file
/// under its final name is whole. The rules that make a SIGKILL at any instant harmless:
/// * a `.state` saying `publish` wins: the crash is stored, only its ID is owed to the queue;
/// * otherwise a `.crash` is a crash to store (attempts from a `.state` saying `store`, if any);
/// * a `.state` saying `store` without its `.crash` is what an interrupted removal left: dropped.
///
/// "Stored" becomes durable (the `publish` state) before the body is removed; a record leaves only
/// once the queue confirmed its ID. Records storage refuses for good move to `quarantine/`, which
/// the collector never deletes (`breakwater spool retry` puts them back). The folder survives
/// process restarts, not the loss of the machine (a Heroku dyno's disk).
public final class Outbox: Sendable {
    public struct Summary: Sendable, Equatable {
        public var toStore = 0
        public var toPublish = 0
        public var bytes = 0
        /// Seconds since the oldest record's crash was received (0 when empty).
        public var oldestAge = 0.0
        public var quarantined = 0
        public var count: Int { toStore + toPublish }
    }

    public struct NotQuarantined: Error, CustomStringConvertible {
        public let description: String
    }

    /// One line of `breakwater spool list`.
    public struct Listing: Sendable {
        public let record: OutboxRecord
        public let quarantined: Bool
    }

    public let directory: String
    public var quarantineDirectory: String { directory + "/quarantine" }
    public let maxBytes: Int
    public let policy: OutboxPolicy
    private let telemetry: Telemetry

    private struct Entry {
        var record: OutboxRecord
        /// Being written by a worker or worked by the mover: nobody else touches it.
        var busy: Bool
    }

    private struct Index {
        var entries: [String: Entry] = [:]
        var bytes = 0
        var quarantined = 0
        var quarantinedBytes = 0
    }

    private let index = Mutex(Index())
    /// The `flock` held while a mover works this folder (-1: none).
    private let lockFD = Mutex<Int32>(-1)

    /// Creates the folders when missing and reads what a previous run left.
    public init(directory: String, maxBytes: Int, policy: OutboxPolicy = OutboxPolicy(), telemetry: Telemetry) throws {
        self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.maxBytes = maxBytes
        self.policy = policy
        self.telemetry = telemetry
        try FileManager.default.createDirectory(atPath: quarantineDirectory, withIntermediateDirectories: true)
        rescan()
    }

    // MARK: writing (worker threads)

    /// Keeps a crash storage did not take; false when the outbox is full or the disk refuses it
    /// (the client then gets 503: never an acknowledgement on the strength of a failed write).
    public func add(_ crash: StoredCrash, queue: Bool, receivedAt: Double) -> Bool {
        let body = OutboxCrashFile.encode(crash, queue: queue, receivedAt: receivedAt)
        var record = OutboxRecord(crashID: crash.crashID, state: .store, queue: queue, receivedAt: receivedAt)
        record.bytes = body.readableBytes
        return admit(record) { try DurableFile.write(body, to: path(crash.crashID, ".crash")) }
    }

    /// Keeps the ID of a stored crash the queue did not take.
    public func addPublish(_ crashID: String, receivedAt: Double) -> Bool {
        var record = OutboxRecord(crashID: crashID, state: .publish, queue: true, receivedAt: receivedAt)
        let bytes = record.encoded
        record.bytes = bytes.count
        return admit(record) { try DurableFile.write(.init(bytes: bytes), to: path(crashID, ".state")) }
    }

    private func admit(_ record: OutboxRecord, write: () throws -> Void) -> Bool {
        let admitted = index.withLock { index in
            guard index.entries[record.crashID] == nil, index.bytes + index.quarantinedBytes + record.bytes <= maxBytes else { return false }
            index.entries[record.crashID] = Entry(record: record, busy: true)
            index.bytes += record.bytes
            return true
        }
        guard admitted else {
            telemetry.logger("breakwater.outbox").error("outbox full (SPOOL_MAX_BYTES)", metadata: ["crash_id": "\(record.crashID)"])
            return false
        }
        do {
            try write()
        } catch {
            telemetry.logger("breakwater.outbox").error("outbox write failed", metadata: ["crash_id": "\(record.crashID)", "error": "\(error)"])
            index.withLock { $0.entries[record.crashID] = nil; $0.bytes -= record.bytes }
            return false
        }
        index.withLock { $0.entries[record.crashID]?.busy = false }
        return true
    }

    // MARK: the mover's side

    /// Claims the folder for this process's mover: two movers would work the same records. Tools
    /// (`spool list`, `spool retry`, `check-config`) never take it.
    func claim() throws {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFile.Failure(operation: "open", path: path, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw Backends.StartupError("SPOOL_DIR \(directory) is in use by another collector")
        }
        lockFD.withLock { $0 = fd }
    }

    /// Removes the temporaries of writes a killed process left (`DurableFile`'s `.tmp-*`). Only
    /// before intake starts: then nobody else writes here.
    func removeTemporaries() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".tmp-") {
            unlink(directory + "/" + name)
        }
    }

    /// Lets the folder go (after the mover was joined).
    func release() {
        lockFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// The oldest due record of an allowed state, marked busy until `finish`/`stored`.
    func takeDue(now: Double, store: Bool, publish: Bool) -> OutboxRecord? {
        index.withLock { index in
            var best: Entry?
            for entry in index.entries.values where !entry.busy && entry.record.nextAttempt <= now {
                guard entry.record.state == .store ? store : publish else { continue }
                if best == nil || entry.record.receivedAt < best!.record.receivedAt { best = entry }
            }
            guard let id = best?.record.crashID else { return nil }
            index.entries[id]?.busy = true
            return best?.record
        }
    }

    /// Up to `limit` more due `publish` records, oldest first, marked busy: the drain sends their
    /// IDs in one publish call where the queue has one (Pub/Sub).
    ///
    /// One pass keeping the `limit` oldest in order, not a sort of every record: after a long
    /// outage the outbox holds hundreds of thousands, and each batch of a drain takes this lock.
    func takeDuePublishes(now: Double, limit: Int) -> [OutboxRecord] {
        index.withLock { index in
            var oldest: [OutboxRecord] = []
            oldest.reserveCapacity(limit + 1)
            for entry in index.entries.values where !entry.busy && entry.record.state == .publish && entry.record.nextAttempt <= now {
                let received = entry.record.receivedAt
                guard oldest.count < limit || received < oldest[oldest.count - 1].receivedAt else { continue }
                let at = oldest.firstIndex { $0.receivedAt > received } ?? oldest.count
                oldest.insert(entry.record, at: at)
                if oldest.count > limit { oldest.removeLast() }
            }
            for record in oldest { index.entries[record.crashID]?.busy = true }
            return oldest
        }
    }

    /// The earliest next-attempt time among idle records of the allowed states (nil when none).
    func nextAttemptTime(store: Bool, publish: Bool) -> Double? {
        index.withLock { index in
            var earliest: Double?
            for entry in index.entries.values where !entry.busy && (entry.record.state == .store ? store : publish) {
                earliest = min(earliest ?? entry.record.nextAttempt, entry.record.nextAttempt)
            }
            return earliest
        }
    }

    /// The body of a record to store; nil when it is unreadable.
    func body(of record: OutboxRecord) -> StoredCrash? {
        guard let data = FileManager.default.contents(atPath: path(record.crashID, ".crash")),
              let (crash, header) = OutboxCrashFile.decode([UInt8](data)), header.crashID == record.crashID else { return nil }
        return crash
    }

    /// The crash is in storage but its ID not queued: the record becomes `publish` (durably,
    /// before the body goes), or leaves when the crash is not to be queued. Returns the record
    /// still to publish, if any.
    func stored(_ record: OutboxRecord) throws -> OutboxRecord? {
        guard record.queue else {
            remove(record)
            return nil
        }
        var next = record
        next.state = .publish
        next.attempts = 0
        next.strikes = 0
        next.lastError = ""
        next.nextAttempt = 0
        let state = next.encoded
        next.bytes = state.count
        try DurableFile.write(.init(bytes: state), to: path(record.crashID, ".state"))
        // From here the record is `publish`, on disk and in the index, whatever becomes of the
        // body: a body the removal leaves behind is dropped by the next start's scan (a `publish`
        // state beside it). Were the removal's failure to put the record back as `store`, it
        // would wait for a body it no longer has, and its ID would never be queued.
        index.withLock { index in
            index.bytes += next.bytes - record.bytes
            index.entries[record.crashID] = Entry(record: next, busy: true)
        }
        removeLogged(path(record.crashID, ".crash"))
        return next
    }

    /// Puts a record the mover took back in line, due at once.
    func idle(_ record: OutboxRecord) {
        index.withLock { $0.entries[record.crashID]?.busy = false }
    }

    /// The queue confirmed the ID (or the crash needs no queueing): the record leaves, also when
    /// a file cannot be removed. Its work is done; a file left behind is worked again at the next
    /// start (a duplicate store or publish, never a loss). Kept in line instead, a record whose
    /// body was already gone could never leave.
    func remove(_ record: OutboxRecord) {
        removeLogged(path(record.crashID, ".crash"))
        removeLogged(path(record.crashID, ".state"))
        index.withLock { index in
            if let entry = index.entries.removeValue(forKey: record.crashID) { index.bytes -= entry.record.bytes }
        }
    }

    private func removeLogged(_ file: String) {
        do {
            try DurableFile.remove(file)
        } catch {
            telemetry.logger("breakwater.outbox").error("cannot remove an outbox file; the next start works it again",
                                                        metadata: ["file": "\(file)", "error": "\(error)"])
        }
    }

    /// An attempt failed: the record's next attempt moves out by its own backoff (not when the
    /// backend is down: the mover's gate paces those, and the record goes as soon as it reopens).
    /// Returns true when it was quarantined instead (`definitive` refusal, or out of attempts).
    @discardableResult
    func failed(_ record: OutboxRecord, error: String, strike: Bool, definitive: Bool, backendDown: Bool = false) -> Bool {
        var next = record
        next.attempts += 1
        if strike { next.strikes += 1 }
        next.lastError = error
        next.nextAttempt = backendDown ? 0 : Date().timeIntervalSince1970 + policy.backoff(afterAttempts: next.attempts)
        let outOfAttempts = policy.maxAttempts > 0 && next.strikes >= policy.maxAttempts
        if record.state == .store && ((definitive && policy.quarantineRefused) || outOfAttempts) {
            if quarantine(next) { return true }
        }
        // The state file only carries counters here: if it cannot be written, memory still has them.
        let state = next.encoded
        if (try? DurableFile.write(.init(bytes: state), to: path(record.crashID, ".state"))) != nil {
            next.bytes = state.count + (record.state == .store ? fileSize(path(record.crashID, ".crash")) : 0)
        }
        index.withLock { index in
            index.bytes += next.bytes - record.bytes
            index.entries[record.crashID] = Entry(record: next, busy: false)
        }
        return false
    }

    /// Moves a record's files to `quarantine/`: the body first, so an interruption leaves at worst
    /// a stale `.state` behind (dropped at the next scan). Once the body has left the line, so has
    /// the record: kept in line, it would wait for a body it no longer has.
    private func quarantine(_ record: OutboxRecord) -> Bool {
        let log = telemetry.logger("breakwater.outbox")
        let body = path(record.crashID, ".crash")
        do {
            try DurableFile.write(.init(bytes: record.encoded), to: path(record.crashID, ".state"))
            try DurableFile.move(body, to: quarantineDirectory + "/\(record.crashID).crash")
        } catch {
            // A move whose rename happened but whose fsync failed has moved the body.
            if access(body, F_OK) == 0 {
                log.error("cannot quarantine an outbox record; it stays in line", metadata: ["crash_id": "\(record.crashID)", "error": "\(error)"])
                return false
            }
        }
        do {
            try DurableFile.move(path(record.crashID, ".state"), to: quarantineDirectory + "/\(record.crashID).state")
        } catch {
            // The body alone is a quarantined record (its header says what it is), without its counters.
            log.error("quarantined without its attempt counters", metadata: ["crash_id": "\(record.crashID)", "error": "\(error)"])
        }
        log.error("crash quarantined: storage refuses it; `breakwater spool retry` puts it back",
                  metadata: ["crash_id": "\(record.crashID)", "attempts": "\(record.attempts)", "error": "\(record.lastError)"])
        index.withLock { index in
            if let entry = index.entries.removeValue(forKey: record.crashID) {
                index.bytes -= entry.record.bytes
                index.quarantined += 1
                index.quarantinedBytes += entry.record.bytes
            }
        }
        telemetry.gauge(MetricCatalog.spoolQuarantined, Double(summary.quarantined))
        return true
    }

    /// Reads the folder again: picks up records put back by `breakwater spool retry` (or left by a
    /// previous run), applies the rules above to leftovers, and recounts the quarantine. Leftovers
    /// are removed only by the process holding the folder (`claim`): a `check-config` or a second
    /// `serve` next to a serving collector would otherwise delete files that collector is working.
    /// - Parameter claimed: the folder was just claimed: the rules also apply to the leftovers of
    ///   records already in line (read before the claim), which are not read again otherwise.
    func rescan(claimed: Bool = false) {
        let tidies = lockFD.withLock { $0 >= 0 }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let known = claimed ? [] : index.withLock { Set($0.entries.keys) }
        var states: [String: OutboxRecord] = [:], bodies: Set<String> = []
        for name in names {
            let id = String(name.prefix { $0 != "." })
            guard !known.contains(id), CrashID.isValid(id) else { continue }
            if name.hasSuffix(".crash") { bodies.insert(id) }
            if name.hasSuffix(".state"), let data = FileManager.default.contents(atPath: directory + "/" + name),
               let record = OutboxRecord.decode([UInt8](data)), record.crashID == id { states[id] = record }
        }
        var found: [OutboxRecord] = []
        for id in Set(states.keys).union(bodies) {
            if var record = states[id], record.state == .publish {
                if bodies.contains(id), tidies { try? DurableFile.remove(path(id, ".crash")) }
                record.bytes = fileSize(path(id, ".state"))
                found.append(record)
            } else if bodies.contains(id), var record = OutboxCrashFile.record(atPath: path(id, ".crash")) {
                if let state = states[id] {
                    record.attempts = state.attempts
                    record.strikes = state.strikes
                    record.lastError = state.lastError
                    record.nextAttempt = state.nextAttempt
                }
                record.bytes = fileSize(path(id, ".crash")) + fileSize(path(id, ".state"))
                found.append(record)
            } else if !bodies.contains(id), tidies {
                try? DurableFile.remove(path(id, ".state"))
            }
        }
        let quarantined = Self.records(in: quarantineDirectory)
        let quarantinedBytes = quarantined.reduce(0) { $0 + $1.bytes }
        index.withLock { index in
            for record in found where index.entries[record.crashID] == nil {
                index.entries[record.crashID] = Entry(record: record, busy: false)
                index.bytes += record.bytes
            }
            index.quarantined = quarantined.count
            index.quarantinedBytes = quarantinedBytes
        }
    }

    // MARK: reporting

    public var summary: Summary {
        let now = Date().timeIntervalSince1970
        return index.withLock { index in
            var s = Summary(bytes: index.bytes, quarantined: index.quarantined)
            var oldest = Double.infinity
            for entry in index.entries.values {
                if entry.record.state == .store { s.toStore += 1 } else { s.toPublish += 1 }
                oldest = min(oldest, entry.record.receivedAt)
            }
            s.oldestAge = oldest.isFinite ? max(0, now - oldest) : 0
            return s
        }
    }

    public var count: Int { summary.count }

    /// For `/__heartbeat__` (check `spool`): warning while anything waits or is quarantined.
    public func check() -> HealthStatus {
        let s = summary
        var parts: [String] = []
        if s.quarantined > 0 { parts.append("\(s.quarantined) crashes quarantined (see `breakwater spool list`)") }
        if s.toStore > 0 { parts.append("\(s.toStore) crashes waiting to be stored") }
        if s.toPublish > 0 { parts.append("\(s.toPublish) crash IDs waiting to be queued") }
        if s.count > 0 { parts.append("oldest \(Int(s.oldestAge)) s") }
        return parts.isEmpty ? .ok : .warning(parts.joined(separator: ", "))
    }

    /// The gauges, refreshed by the sampler so a stuck record ages visibly.
    public func reportGauges() {
        let s = summary
        telemetry.gauge(MetricCatalog.spoolSize, Double(s.count))
        telemetry.gauge(MetricCatalog.spoolBytes, Double(s.bytes))
        telemetry.gauge(MetricCatalog.spoolOldestAge, s.oldestAge)
        telemetry.gauge(MetricCatalog.spoolQuarantined, Double(s.quarantined))
        telemetry.gauge(MetricCatalog.publishBacklogSize, Double(s.toPublish))
    }

    // MARK: operator tools (no instance: they run next to a serving collector)

    /// What is in the outbox and its quarantine, oldest first.
    public static func list(directory: String) -> [Listing] {
        let waiting = records(in: directory).map { Listing(record: $0, quarantined: false) }
        let held = records(in: directory + "/quarantine").map { Listing(record: $0, quarantined: true) }
        return (waiting + held).sorted { $0.record.receivedAt < $1.record.receivedAt }
    }

    /// Puts quarantined crashes back in line with fresh counters (all of them when `crashIDs` is
    /// empty). Returns the IDs moved; throws for an ID that is not quarantined. A serving
    /// collector picks them up at its next scan.
    public static func retry(directory: String, crashIDs: [String]) throws -> [String] {
        let quarantine = directory + "/quarantine"
        let held = Set(records(in: quarantine).map(\.crashID))
        let wanted = crashIDs.isEmpty ? held.sorted() : crashIDs
        for id in wanted where !held.contains(id) {
            throw NotQuarantined(description: "\(id.debugDescription) is not in \(quarantine)")
        }
        for id in wanted {
            try DurableFile.move("\(quarantine)/\(id).crash", to: "\(directory)/\(id).crash")
            try DurableFile.remove("\(quarantine)/\(id).state")
        }
        return wanted
    }

    /// The records of one folder, read from their files (rules as in `rescan`).
    static func records(in folder: String) -> [OutboxRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var states: [String: OutboxRecord] = [:]
        for name in names where name.hasSuffix(".state") {
            if let data = FileManager.default.contents(atPath: folder + "/" + name), let record = OutboxRecord.decode([UInt8](data)) {
                states[record.crashID] = record
            }
        }
        var out: [OutboxRecord] = []
        for name in names where name.hasSuffix(".crash") {
            guard var record = OutboxCrashFile.record(atPath: folder + "/" + name) else { continue }
            if let state = states[record.crashID] {
                if state.state == .publish { continue }  // stored already: listed below
                states[record.crashID] = nil
                record.attempts = state.attempts
                record.strikes = state.strikes
                record.lastError = state.lastError
                record.nextAttempt = state.nextAttempt
            }
            record.bytes = fileSize(folder + "/" + name)
            out.append(record)
        }
        for state in states.values where state.state == .publish {
            var record = state
            record.bytes = fileSize(folder + "/\(state.crashID).state")
            out.append(record)
        }
        return out
    }

    private func path(_ crashID: String, _ suffix: String) -> String { "\(directory)/\(crashID)\(suffix)" }

    private func fileSize(_ path: String) -> Int { Self.fileSize(path) }

    private static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}
