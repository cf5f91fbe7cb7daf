import CoreMetrics
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Telemetry's metric handlers, each made once per metric and tag: a crash updates about fifteen
/// metrics, and resolving them by name and tag on every update was a measurable share of its CPU.
///
/// Two layers. One table under one lock holds every handler made; each thread keeps its own copy
/// of what it has used and reads it with no lock at all. (Sixteen locked shards were not enough:
/// the workers update the same metric at about the same moment, so they met on the same shard,
/// and a contended `Mutex` puts the waiter to sleep in the kernel.) Both layers hold only keys
/// whose tag value the catalog allows, so neither grows with what clients send.
final class HandlerCache: Sendable {
    enum Handler: Sendable {
        case counter(CounterHandler)
        case recorder(RecorderHandler)
        case timer(TimerHandler)
    }

    /// A metric and its one tag (every catalog metric has at most one), hashed once per lookup.
    struct Key: Hashable {
        let name: String
        let kind: MetricCatalog.Kind
        let tag: String
        let value: String
        let hash: Int

        init(name: String, kind: MetricCatalog.Kind, tag: String, value: String) {
            (self.name, self.kind, self.tag, self.value) = (name, kind, tag, value)
            var hasher = Hasher()
            hasher.combine(name)
            hasher.combine(kind)
            hasher.combine(tag)
            hasher.combine(value)
            hash = hasher.finalize()
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }

        static func == (a: Self, b: Self) -> Bool {
            a.hash == b.hash && a.name == b.name && a.kind == b.kind && a.tag == b.tag && a.value == b.value
        }
    }

    private let shared = Mutex<[Key: Handler]>([:])
    /// Tells the threads' copies apart: tests make many `Telemetry`s on the same threads.
    private let id = HandlerCache.lastID.add(1, ordering: .relaxed).newValue
    private static let lastID = Atomic<UInt64>(0)

    /// The handler of `name` with `tag`. A tag value outside its closed set in the catalog is
    /// looked up (and made, once) as `other`.
    func handler(_ name: String, _ kind: MetricCatalog.Kind, _ tag: (String, String)?,
                 make: ([(String, String)]) -> Handler) -> Handler {
        let key = Key(name: name, kind: kind, tag: tag?.0 ?? "", value: tag?.1 ?? "")
        let copy = ThreadCopy.current(for: id)
        if let found = copy.handlers[key] { return found }
        let allowed = tag.map { MetricCatalog.allowed(name, tag: $0.0, $0.1) } ?? ""
        let stored = Key(name: name, kind: kind, tag: key.tag, value: allowed)
        let handler = shared.withLock { handlers in
            if let found = handlers[stored] { return found }
            let made = make(tag.map { [($0.0, allowed)] } ?? [])
            handlers[stored] = made
            return made
        }
        copy.handlers[stored] = handler
        return handler
    }
}

/// One thread's copy of a `HandlerCache`, reached through a pthread key: only its own thread ever
/// touches it, so it needs no lock, and it is released when the thread exits.
private final class ThreadCopy {
    var owner: UInt64 = 0
    var handlers: [HandlerCache.Key: HandlerCache.Handler] = [:]

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { Unmanaged<ThreadCopy>.fromOpaque($0!).release() }
        return key
    }()

    /// This thread's copy, emptied first if it belonged to another cache.
    static func current(for owner: UInt64) -> ThreadCopy {
        let copy: ThreadCopy
        if let raw = pthread_getspecific(key) {
            copy = Unmanaged<ThreadCopy>.fromOpaque(raw).takeUnretainedValue()
        } else {
            copy = ThreadCopy()
            pthread_setspecific(key, Unmanaged.passRetained(copy).toOpaque())
        }
        if copy.owner != owner {
            copy.owner = owner
            copy.handlers = [:]
        }
        return copy
    }
}
