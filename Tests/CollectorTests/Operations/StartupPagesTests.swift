import Foundation
import Testing
@testable import Collector

struct StartupPagesTests {
    /// Only the executable's mappings that are neither writable nor hold private pages are
    /// dropped: relocated read-only data (RELRO, anonymous pages) and data never are.
    @Test func onlyCleanReadOnlyMappingsOfTheExecutableAreDropped() {
        let smaps = """
            55d0a0000000-55d0a0700000 r--p 00000000 fe:00 42                         /app/my breakwater
            Size:               7168 kB
            Rss:                1856 kB
            Anonymous:             0 kB
            VmFlags: rd mr mw me sd
            55d0a0700000-55d0a2100000 r-xp 006fe000 fe:00 42                         /app/my breakwater
            Rss:               14800 kB
            Anonymous:             0 kB
            55d0a2100000-55d0a2200000 r--p 02132000 fe:00 42                         /app/my breakwater
            Rss:                1136 kB
            Anonymous:          1136 kB
            55d0a2200000-55d0a2300000 rw-p 0224d000 fe:00 42                         /app/my breakwater
            Anonymous:             0 kB
            7f0000000000-7f0000100000 r-xp 00000000 fe:00 7                          /usr/lib/libc.so.6
            Anonymous:             0 kB
            7f0000200000-7f0000300000 r-xp 00000000 fe:00 43                         /app/my breakwater (deleted)
            Anonymous:             0 kB
            7f0000400000-7f0000500000 rw-p 00000000 00:00 0
            Anonymous:             4 kB
            """
        let ranges = StartupPages.droppable(smaps: smaps, executable: "/app/my breakwater")
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
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if let first = fields.first, !first.hasSuffix(":"), first.contains("-") {
                    let bounds = first.split(separator: "-").compactMap { UInt($0, radix: 16) }
                    inRange = bounds.count == 2 && ranges.contains(bounds[0]..<bounds[1])
                } else if inRange, fields.first == "Rss:", fields.count > 1 {
                    total += Int(fields[1]) ?? 0
                }
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
