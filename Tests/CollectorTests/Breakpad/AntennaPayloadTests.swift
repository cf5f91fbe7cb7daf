import Foundation
import Testing
@testable import Collector

/// Payloads Antenna stores, with its notes, that a stricter collector would refuse: a Breakpad
/// client answered 400 never sends its crash again.
@Suite struct AntennaPayloadTests {
    static func notes(_ raw: [String: Any]) -> [String] {
        (raw["metadata"] as? [String: Any])?["collector_notes"] as? [String] ?? []
    }

    /// Submits the form `build` makes to a new server: the crash stored and its raw crash.
    static func store(_ build: (inout MultipartBody) -> Void) async throws -> (crash: StoredCrash, raw: [String: Any]) {
        let server = try await TestServer.start()
        var form = MultipartBody()
        build(&form)
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        let stored = (try #require(server.captured[id]), try #require(server.captured.rawCrash(id)))
        try await server.stop()
        return stored
    }

    @Test func textThatIsNotUTF8IsLeftOutWithANote() async throws {
        let (_, raw) = try await Self.store { form in
            form.field("ProductName", "Firefox")
            form.part(headers: "Content-Disposition: form-data; name=\"Comments\"", body: [0x46, 0xff, 0xfe, 0x46])
        }
        #expect(raw["ProductName"] as? String == "Firefox")
        #expect(raw["Comments"] == nil)
        #expect(Self.notes(raw) == ["extract payload text part exception: invalid text or charset: utf-8"])
    }

    @Test func aPartWithoutANameIsSkipped() async throws {
        let (crash, raw) = try await Self.store { form in
            form.field("ProductName", "Firefox")
            form.part(headers: "Content-Disposition: form-data", body: Array("junk".utf8))
            form.part(headers: "Content-Disposition: form-data; filename=\"x.dmp\"\r\nContent-Type: application/octet-stream",
                      body: Fixtures.bytes("test.dmp"))
        }
        #expect(raw.keys.sorted() == ["ProductName", "metadata", "submitted_timestamp", "uuid", "version"])
        #expect(crash.dumpNames == [])
    }

    /// Antenna's JSON part replaces the annotations read before it; later text parts add to it.
    @Test func aJSONPartReplacesEarlierTextAnnotationsWithANote() async throws {
        let (_, raw) = try await Self.store { form in
            form.field("Before", "dropped")
            form.json("extra", #"{"ProductName":"Firefox","Version":"140.0"}"#)
            form.field("After", "kept")
        }
        #expect(raw["Before"] == nil && raw["After"] as? String == "kept" && raw["ProductName"] as? String == "Firefox")
        #expect(Self.notes(raw) == ["includes annotations in both json-encoded extra and formdata parts"])
    }

    /// A dump part of another type is noted, with the sanitized name and a bounded type.
    @Test func aDumpOfAnotherContentTypeIsNoted() async throws {
        let (_, raw) = try await Self.store { form in
            form.field("ProductName", "Firefox")
            form.part(headers: "Content-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"a.dmp\"",
                      body: Fixtures.bytes("test.dmp"))
            form.part(headers: "Content-Disposition: form-data; name=\"memory/report\"; filename=\"m\"\r\nContent-Type: application/x-" +
                      String(repeating: "z", count: 500), body: Array("{}".utf8))
        }
        let notes = Self.notes(raw)
        #expect(notes.count == 2)
        #expect(notes.first == "unknown content type: upload_file_minidump text/plain")
        #expect(notes.last == "unknown content type: memoryreport application/x-" + String(repeating: "z", count: 86))
    }

    /// `dump_names` as stored is sorted, as Antenna writes it, whatever order the parts came in.
    @Test func dumpNamesAreStoredSorted() throws {
        let root = try FilesystemCrashStorageTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let crash = StorageFixtures.crash([("upload_file_minidump", "test.dmp"), ("memory_report", "test.dmp"), ("Alpha", "test.dmp")])
        try FilesystemCrashStorage(root: root).save(crash)
        let names = FilesystemCrashStorageTests.contents("\(root)/v1/dump_names/\(crash.crashID)")
        #expect(names.map { String(decoding: $0, as: UTF8.self) } == #"["Alpha","memory_report","upload_file_minidump"]"#)
    }

    /// A client's crash ID must carry a throttle digit the processors read (Antenna's strict check).
    @Test func aClientCrashIDNeedsAThrottleDigit() async throws {
        let server = try await TestServer.start { $0.submitterToken = "sekrit" }
        for (id, accepted) in [("de1bb258-cbbf-4589-a673-34f800160918", true), ("de1bb258-cbbf-4589-a673-34f801160918", true),
                               ("de1bb258-cbbf-4589-a673-34f805160918", false), ("de1bb258-cbbf-4589-a673-34f80a160918", false)] {
            var form = MultipartBody()
            form.field("ProductName", "Firefox")
            form.field("uuid", id)
            let response = try await server.submit(form.finished, headers: [("Authorization", "Bearer sekrit")])
            if accepted {
                #expect(try BreakpadIntakeTests.crashID(of: response) == id)
            } else {
                #expect(response.status == 400 && response.body == "Discarded=malformed_invalid_uuid", "\(id)")
            }
        }
        try await server.stop()
    }
}
