import Foundation
import Logging
import NIOConcurrencyHelpers
import Telemetry

/// Moves spooled crashes to storage, oldest first, then queues the accepted ones. One background
/// thread, at most `perSecond` crashes a second so a recovering storage is not flooded and live
/// traffic keeps its workers; after a failed save it waits before trying again.
public final class SpoolDrainer: @unchecked Sendable {
    private let spool: CrashSpool
    private let saver: CrashSaver
    private let publisher: QueuePublisher
    private let telemetry: Telemetry
    private let logger: Logger
    private let perSecond: Double
    private let retryDelay: Double
    private let condition = NSCondition()
    private var stopping = false
    private var thread: Thread?

    public init(spool: CrashSpool, saver: CrashSaver, publisher: QueuePublisher, telemetry: Telemetry,
                perSecond: Double = 50, retryDelay: Double = 1) {
        self.spool = spool
        self.saver = saver
        self.publisher = publisher
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.spool")
        self.perSecond = perSecond
        self.retryDelay = retryDelay
    }

    public func start() {
        let t = Thread { [self] in self.loop() }
        t.name = "breakwater-spool-drainer"
        thread = t
        t.start()
    }

    /// Drains as far as `deadline` allows, then stops the thread; what is left stays spooled.
    public func stop(drainingUntil deadline: Date) {
        while Date() < deadline, spool.count > 0, drainOne() {}
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while !isStopping {
            let pause = drainOne() ? 1 / perSecond : retryDelay
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(pause)) }
            condition.unlock()
        }
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Moves the oldest spooled crash; false when there was none or storage refused it.
    @discardableResult
    func drainOne() -> Bool {
        guard let path = try? spool.pending().first else { return false }
        guard let entry = spool.read(path) else {
            logger.error("unreadable spool file left in place", metadata: ["path": "\(path)"])
            try? FileManager.default.moveItem(atPath: path, toPath: path + ".bad")
            return true
        }
        // One attempt per pass: the pause between passes is the retry policy here.
        do {
            try saver.storage.save(entry.crash)
        } catch {
            telemetry.count(MetricCatalog.saveCrash, [("result", "retry")])
            return false
        }
        telemetry.count(MetricCatalog.saveCrash, [("result", "success")])
        saver.storageRecovered()
        spool.remove(path)
        let queued: Bool? = entry.queue ? publisher.publish(entry.crash.crashID) : nil
        logger.info("spooled crash stored", metadata: ["crash_id": "\(entry.crash.crashID)", "queued": "\(queued.map(String.init) ?? "-")"])
        return true
    }
}
