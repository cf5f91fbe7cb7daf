import NIOCore

/// A crash ready to be stored: its ID, the raw crash JSON and its dumps.
public struct StoredCrash: Sendable {
    public var crashID: String
    /// The raw crash as stored: JSON with sorted keys (see `RawCrash`).
    public var rawCrash: [UInt8]
    public var dumps: [CrashDump]

    public init(crashID: String, rawCrash: [UInt8], dumps: [CrashDump]) {
        self.crashID = crashID
        self.rawCrash = rawCrash
        self.dumps = dumps
    }

    /// Dump names as stored in `dump_names` (the main dump keeps its field name there).
    public var dumpNames: [String] { dumps.map(\.name) }

    /// The `dump_names` object: a JSON list of the dump names, sorted as Antenna writes it.
    var dumpNamesJSON: String { JSONValue.array(dumpNames.sorted().map(JSONValue.string)).serialized() }

    /// Bytes a storage writes for this crash, all objects together.
    public var storedBytes: Int {
        dumps.reduce(rawCrash.count + dumpNamesJSON.utf8.count) { $0 + $1.bytes.readableBytes }
    }
}

/// Where crashes go. `save` is synchronous and called from worker threads concurrently; it either
/// stores the whole crash (dumps, dump_names, then raw_crash last) or throws.
public protocol CrashStorage: Sendable {
    func save(_ crash: StoredCrash) throws
    /// A cheap probe for `/__heartbeat__`.
    func check() -> HealthStatus
    /// Crash IDs whose raw crash is stored under the date folder `YYYYMMDD` (for `republish`).
    func crashIDs(onDate date: String) throws -> [String]
    /// Whether `save` waits on a disk or a network (true unless the backend says otherwise): the
    /// worker pool then lets the next crash use the CPU meanwhile (`WorkerPool.nowWaitingOnIO`).
    var waitsOnIO: Bool { get }
    /// Whether a successful `save` keeps the crash anywhere (false for the null storage), so
    /// `save_crash` never counts a success, nor `save_crash.bytes` bytes, that were kept nowhere.
    var keeps: Bool { get }
}

extension CrashStorage {
    public var waitsOnIO: Bool { true }
    public var keeps: Bool { true }
}

/// The storage key layout Socorro's processors read (DESIGN.md, "Storage keys").
public enum StorageKeys {
    public static func rawCrash(_ crashID: String) -> String {
        "v1/raw_crash/\(CrashID.dateFolder(of: crashID))/\(crashID)"
    }

    public static func dumpNames(_ crashID: String) -> String { "v1/dump_names/\(crashID)" }

    /// `upload_file_minidump` is stored as `dump`.
    public static func dump(_ name: String, _ crashID: String) -> String {
        "v1/\(name == "upload_file_minidump" ? "dump" : name)/\(crashID)"
    }

    public static func rawCrashFolder(date: String) -> String { "v1/raw_crash/\(date)/" }

    /// Every object of a crash in the order they must be written: dumps, dump_names, raw_crash last.
    public static func objects(of crash: StoredCrash) -> [(key: String, bytes: ByteBuffer)] {
        var out: [(key: String, bytes: ByteBuffer)] = crash.dumps.map { (dump($0.name, crash.crashID), $0.bytes) }
        out.append((dumpNames(crash.crashID), ByteBuffer(string: crash.dumpNamesJSON)))
        out.append((rawCrash(crash.crashID), ByteBuffer(bytes: crash.rawCrash)))
        return out
    }
}
