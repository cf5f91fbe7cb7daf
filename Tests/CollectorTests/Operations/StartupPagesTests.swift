import Foundation
import Testing
@testable import Collector

struct StartupPagesTests {
    /// Only the executable's mappings that are neither writable nor hold private pages are
    /// dropped: never data, relocated read-only data (RELRO: anonymous pages, or swapped out),
    /// other files or a replaced executable.
    @Test func onlyCleanReadOnlyMappingsOfTheExecutableAreDropped() {
        func mapping(_ header: String, anonymous: Int = 0, dirty: Int = 0, swap: Int = 0) -> String {
            """
            \(header)
            Size:               1024 kB
            Rss:                 512 kB
            Private_Dirty:      \(dirty) kB
            Anonymous:          \(anonymous) kB
            Swap:               \(swap) kB
            SwapPss:            \(swap) kB
            VmFlags: rd mr mw me sd

            """
        }
        let exe = "/app/my breakwater"
        // The first: page-cache pages not yet written back count as Private_Dirty, not private.
        let smaps = mapping("55d0a0000000-55d0a0700000 r--p 00000000 fe:00 42                         \(exe)", dirty: 512)
            + mapping("55d0a0700000-55d0a2100000 r-xp 006fe000 fe:00 42                         \(exe)")
            + mapping("55d0a2100000-55d0a2200000 r--p 02132000 fe:00 42                         \(exe)", anonymous: 1136, dirty: 1136)
            + mapping("55d0a2200000-55d0a2300000 r--p 02232000 fe:00 42                         \(exe)", swap: 64)
            + mapping("55d0a2300000-55d0a2400000 rw-p 0224d000 fe:00 42                         \(exe)")
            + mapping("7f0000000000-7f0000100000 r-xp 00000000 fe:00 7                          /usr/lib/libc.so.6")
            + mapping("7f0000200000-7f0000300000 r-xp 00000000 fe:00 43                         \(exe) (deleted)")
            + mapping("7f0000400000-7f0000500000 rw-p 00000000 00:00 0", anonymous: 4, dirty: 4)
        let ranges = StartupPages.droppable(smaps: smaps, executable: exe)
        #expect(ranges == [0x55d0a0000000..<0x55d0a0700000, 0x55d0a0700000..<0x55d0a2100000])
    }

    /// In this process: the executable's droppable pages are resident after the tests ran, fewer
    /// are after the call, and the process goes on running its code.
    @Test func releasingUnmapsResidentCodePages() throws {
        func residentKB() throws -> Int {
            let smaps = try String(contentsOfFile: "/proc/self/smaps", encoding: .utf8)
            let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let ranges = StartupPages.droppable(smaps: smaps, executable: executable)
            var total = 0, inRange = false
            for line in smaps.split(separator: "\n") {
                if let mapping = StartupPages.mapping(header: line) {
                    inRange = ranges.contains(mapping.range)
                    continue
                }
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if inRange, fields.first == "Rss:", fields.count > 1 { total += Int(fields[1]) ?? 0 }
            }
            return total
        }
        let before = try residentKB()
        try #require(before > 1024, "the test executable's code should be resident")
        StartupPages.release()
        let after = try residentKB()
        #expect(after < before / 2)
    }
}
