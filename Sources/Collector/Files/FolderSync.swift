import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Folder fsyncs shared by concurrent writers (group commit). A writer whose rename happened
/// before an fsync of the same folder began is covered by that fsync, so eight crashes renaming
/// into `v1/dump/` at once cost one or two folder fsyncs instead of eight, with the same
/// guarantee: `sync` returns only after an fsync that began after the caller's call.
final class FolderSync: Sendable {
    static let shared = FolderSync()

    /// One caller's place in line; the caller sleeps on `wake` until its fsync is done or it is
    /// asked to run the next one.
    private final class Ticket: Sendable {
        enum Outcome { case synced(DurableFile.Failure?), lead(target: UInt64) }
        let wake = DispatchSemaphore(value: 0)
        let outcome = Mutex<Outcome?>(nil)
    }

    private struct Folder {
        /// Tickets handed out; an fsync started after ticket N was issued covers N.
        var issued: UInt64 = 0
        var syncing = false
        var waiting: [(number: UInt64, ticket: Ticket)] = []
    }

    private let folders = Mutex<[String: Folder]>([:])

    func sync(_ folder: String) throws {
        // Made before taking the lock, and the waiters woken after leaving it: every save takes
        // this lock up to six times, and a thread that finds it held spins before it sleeps. With the
        // semaphore signals inside it, 2% of the machine's CPU under filesystem storage went to
        // those spins (docs/performance.md, "Issue 16, twelfth pass").
        let ticket = Ticket()
        let (number, leads) = folders.withLock { folders -> (UInt64, Bool) in
            var state = folders[folder, default: Folder()]
            state.issued += 1
            let leads = !state.syncing
            if leads { state.syncing = true } else { state.waiting.append((state.issued, ticket)) }
            folders[folder] = state
            return (state.issued, leads)
        }
        var target = number
        if !leads {
            ticket.wake.wait()
            switch ticket.outcome.withLock({ $0 })! {
            case .synced(let failure):
                if let failure { throw failure }
                return
            case .lead(let next):
                target = next
            }
        }
        let failure = Self.fsync(folder)
        let woken = folders.withLock { folders -> [Ticket] in
            var state = folders[folder]!
            var woken = state.waiting.filter { $0.number <= target }.map(\.ticket)
            state.waiting.removeAll { $0.number <= target }
            for ticket in woken { ticket.outcome.withLock { $0 = .synced(failure) } }
            // Writers that arrived during this fsync need one that starts after them: the first of
            // them runs it for all, so no writer leads forever.
            if state.waiting.isEmpty {
                folders[folder] = nil
            } else {
                let next = state.waiting.removeFirst().ticket
                next.outcome.withLock { $0 = .lead(target: state.issued) }
                folders[folder] = state
                woken.append(next)
            }
            return woken
        }
        // Each outcome is set: a woken writer reads it once its semaphore is signalled.
        for ticket in woken { ticket.wake.signal() }
        if let failure { throw failure }
    }

    private static func fsync(_ folder: String) -> DurableFile.Failure? {
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return DurableFile.Failure(operation: "open", path: folder, errno: errno) }
        defer { close(fd) }
        return Glibc.fsync(fd) == 0 ? nil : DurableFile.Failure(operation: "fsync", path: folder, errno: errno)
    }
}
