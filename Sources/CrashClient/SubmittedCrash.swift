import Collector
import Foundation

/// One crash report for `CrashSubmitter` to post, from one of its three sources: a stored crash
/// folder, a minidump file with annotations, or a synthetic crash of a chosen size.
public struct SubmittedCrash: Sendable {
    public enum Annotations: Sendable {
        /// One text part per annotation (Breakpad, Crashpad).
        case fields([(name: String, value: String)])
        /// One `extra` part holding a JSON object (Mozilla's crash reporter); keeps value types.
        case json(String)
    }

    /// What to print next to the answer: the stored crash ID, the file, or `synthetic-<n>`.
    public var label: String
    public var annotations: Annotations
    public var dumps: [(name: String, bytes: [UInt8])]

    public init(label: String, annotations: Annotations, dumps: [(name: String, bytes: [UInt8])]) {
        self.label = label
        self.annotations = annotations
        self.dumps = dumps
    }

    /// The multipart/form-data body.
    public func form() -> MultipartWriter {
        var form = MultipartWriter()
        switch annotations {
        case .fields(let fields): for (name, value) in fields { form.field(name, value) }
        case .json(let json): form.json("extra", json)
        }
        for dump in dumps { form.file(dump.name, dump.bytes) }
        return form
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// What the collector adds to a raw crash; left out so the receiving collector makes its own.
    static let collectorFields: Set = ["uuid", "submitted_timestamp", "version", "metadata"]

    /// The crashes stored under `root` in the storage layout (`v1/raw_crash/<YYYYMMDD>/<id>`,
    /// `v1/dump_names/<id>`, `v1/<dump>/<id>`), all of them or only `crashID`, oldest date first.
    public static func stored(root: String, crashID: String? = nil) throws -> [SubmittedCrash] {
        let files = FileManager.default
        let rawRoot = root + "/v1/raw_crash"
        guard let dates = try? files.contentsOfDirectory(atPath: rawRoot) else {
            throw LoadError(description: "\(root): no v1/raw_crash folder (not a crash storage root)")
        }
        var crashes: [SubmittedCrash] = []
        for date in dates.sorted() {
            let ids = try files.contentsOfDirectory(atPath: rawRoot + "/" + date).filter { crashID == nil || $0 == crashID }
            for id in ids.sorted() { crashes.append(try storedCrash(root: root, id: id)) }
        }
        if let crashID, crashes.isEmpty { throw LoadError(description: "\(root): no stored crash \(crashID)") }
        return crashes
    }

    static func storedCrash(root: String, id: String) throws -> SubmittedCrash {
        func read(_ key: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: root + "/" + key) else {
                throw LoadError(description: "\(root): missing \(key)")
            }
            return Array(data)
        }
        guard case .object(var raw) = try JSONValue.parse(try read(StorageKeys.rawCrash(id))) else {
            throw LoadError(description: "\(id): raw crash is not a JSON object")
        }
        for field in collectorFields { raw[field] = nil }
        var dumps: [(name: String, bytes: [UInt8])] = []
        if case .array(let names) = try JSONValue.parse(try read(StorageKeys.dumpNames(id))) {
            for case .string(let name) in names { dumps.append((name, try read(StorageKeys.dump(name, id)))) }
        }
        return SubmittedCrash(label: id, annotations: .json(JSONValue.object(raw).serialized()), dumps: dumps)
    }

    /// A minidump file sent as `upload_file_minidump` with the given annotations.
    public static func minidump(path: String, annotations: [(name: String, value: String)]) throws -> SubmittedCrash {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError(description: "\(path): cannot read") }
        return SubmittedCrash(label: path, annotations: .fields(annotations), dumps: [("upload_file_minidump", Array(data))])
    }

    /// A crash with a `size`-byte random dump (minidump signature first) and test annotations,
    /// which `annotations` extend or override.
    public static func synthetic(index: Int, size: Int, annotations: [(name: String, value: String)] = []) -> SubmittedCrash {
        var fields: [(name: String, value: String)] = [
            ("ProductName", "Breakwater"), ("Version", "1.0"), ("ReleaseChannel", "test"),
            ("BuildID", "20260101000000"), ("CrashTime", String(Int(Date().timeIntervalSince1970))),
        ]
        for (name, value) in annotations {
            fields.removeAll { $0.name == name }
            fields.append((name, value))
        }
        var dump = Array("MDMP".utf8.prefix(size))
        var generator = SystemRandomNumberGenerator()
        while dump.count < size { dump.append(UInt8.random(in: 0...255, using: &generator)) }
        return SubmittedCrash(label: "synthetic-\(index)", annotations: .fields(fields), dumps: [("upload_file_minidump", dump)])
    }
}
