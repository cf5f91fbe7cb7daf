import Foundation
import NIOCore

/// The body of a crash waiting to be stored, `<crash id>.crash`: a magic line, one JSON header
/// line (crash ID, whether to queue it, receive time, each part's length), then the raw crash
/// and the dumps back to back. Written once with `DurableFile`, so under its final name it is
/// whole; the lengths are checked again on reading, so a damaged file is refused, never misread.
enum OutboxCrashFile {
    private static let magic = Array("BWOUTBOX1\n".utf8)

    static func encode(_ crash: StoredCrash, queue: Bool, receivedAt: Double) -> ByteBuffer {
        var header: [String: JSONValue] = [
            "crash_id": .string(crash.crashID), "queue": .bool(queue), "received_at": .number(receivedAt),
            "raw_crash_length": .number(Double(crash.rawCrash.count)),
        ]
        header["dumps"] = .array(crash.dumps.map { .object(["name": .string($0.name), "length": .number(Double($0.bytes.readableBytes))]) })
        var file = ByteBuffer(bytes: magic)
        file.writeString(JSONValue.object(header).serialized() + "\n")
        file.writeBytes(crash.rawCrash)
        for dump in crash.dumps { file.writeImmutableBuffer(dump.bytes) }
        return file
    }

    /// The crash and its header's record (state `store`); nil unless the file is exactly whole.
    static func decode(_ bytes: [UInt8]) -> (crash: StoredCrash, record: OutboxRecord)? {
        guard bytes.starts(with: magic), let newline = bytes[magic.count...].firstIndex(of: UInt8(ascii: "\n")),
              case .object(let header)? = try? JSONValue.parse(bytes[magic.count..<newline]),
              case .string(let id)? = header["crash_id"], CrashID.isValid(id),
              case .bool(let queue)? = header["queue"], case .number(let received)? = header["received_at"],
              case .number(let rawLength)? = header["raw_crash_length"], case .array(let dumpList)? = header["dumps"] else { return nil }
        var offset = newline + 1
        guard rawLength >= 0, offset + Int(rawLength) <= bytes.count else { return nil }
        let raw = Array(bytes[offset..<(offset + Int(rawLength))])
        offset += Int(rawLength)
        var dumps: [CrashDump] = []
        for item in dumpList {
            guard case .string(let name)? = item["name"], case .number(let length)? = item["length"],
                  length >= 0, offset + Int(length) <= bytes.count else { return nil }
            dumps.append(CrashDump(name: name, bytes: ByteBuffer(bytes: bytes[offset..<(offset + Int(length))])))
            offset += Int(length)
        }
        guard offset == bytes.count else { return nil }
        return (StoredCrash(crashID: id, rawCrash: raw, dumps: dumps),
                OutboxRecord(crashID: id, state: .store, queue: queue, receivedAt: received))
    }

    /// Only the header's record, without reading the parts (for `spool list` and start-up); for a
    /// body whose header cannot be read, the record `unreadable` makes. Nil only when the file is
    /// gone or not named for a crash.
    static func record(atPath path: String) -> OutboxRecord? {
        header(atPath: path) ?? unreadable(atPath: path)
    }

    private static func header(atPath path: String) -> OutboxRecord? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        // Read up to the header's end: about 60 bytes per dump, so `MAX_PARTS` sets its length.
        var bytes: [UInt8] = [], newline: Int?
        while newline == nil, bytes.count < maxHeaderBytes, bytes.count < magic.count || bytes.starts(with: magic) {
            guard let chunk = try? handle.read(upToCount: 64 * 1024), !chunk.isEmpty else { break }
            let searched = max(bytes.count, magic.count)
            bytes += chunk
            if searched < bytes.count { newline = bytes[searched...].firstIndex(of: UInt8(ascii: "\n")) }
        }
        guard bytes.starts(with: magic), let newline,
              case .object(let header)? = try? JSONValue.parse(bytes[magic.count..<newline]),
              case .string(let id)? = header["crash_id"], CrashID.isValid(id),
              case .bool(let queue)? = header["queue"], case .number(let received)? = header["received_at"] else { return nil }
        return OutboxRecord(crashID: id, state: .store, queue: queue, receivedAt: received)
    }

    /// Far above any header `MAX_PARTS` allows, so that a damaged file is not read whole for one.
    static let maxHeaderBytes = 64 << 20

    /// The record of a body whose header cannot be read (damaged, or cut short), made from its
    /// file: its name (a valid crash ID) and its time. It goes in line like any other, so it is
    /// counted, listed and, since it can never be stored, quarantined, never silently left.
    private static func unreadable(atPath path: String) -> OutboxRecord? {
        let id = String((path as NSString).lastPathComponent.prefix { $0 != "." })
        var st = stat()
        guard CrashID.isValid(id), stat(path, &st) == 0 else { return nil }
        var record = OutboxRecord(crashID: id, state: .store, queue: true, receivedAt: Double(st.st_mtim.tv_sec))
        record.lastError = "the outbox file's header cannot be read"
        return record
    }
}
