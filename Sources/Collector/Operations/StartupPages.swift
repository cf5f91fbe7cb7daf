import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The executable's read-only pages that only start-up needed, handed back once serving has begun.
///
/// Start-up (arguments, configuration, backends, the service group, binding the listener) runs
/// code that serving never runs again, and the kernel maps a file's pages in 64 KB windows around
/// each page touched (fault-around): a started collector kept about 20 MB of its executable
/// resident, much of it cold. Dropping the
/// executable's clean read-only mappings (`MADV_DONTNEED`) unmaps those pages; the ones serving
/// uses come back from the page cache on their first touch (minor faults, once). Only mappings
/// that are not writable and hold no private pages are dropped: relocated read-only data (RELRO)
/// is private memory, and dropping it would lose the relocations.
public enum StartupPages {
    /// Once, when the collector has started. Requests may already be running: a dropped page they
    /// need comes back on its next touch, and a mapping that is not writable gains no private page
    /// while this reads smaps. Does nothing where `/proc` cannot say what is mapped.
    public static func release() {
        guard let smaps = try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8),
              let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
        for range in droppable(smaps: smaps, executable: executable) {
            guard let start = UnsafeMutableRawPointer(bitPattern: range.lowerBound) else { continue }
            // Only a hint to the kernel: a refusal leaves the pages mapped, as they were.
            _ = madvise(start, Int(range.upperBound - range.lowerBound), MADV_DONTNEED)
        }
    }

    /// The address ranges of `executable`'s mappings in `smaps` (the format of `/proc/PID/smaps`)
    /// that are not writable and hold no private pages: none anonymous, none swapped out (a
    /// swapped-out relocated page is no longer counted as anonymous, and dropping it would lose it
    /// all the same). `Private_Dirty` is no guide: it also counts page-cache pages not yet written
    /// back, as a freshly linked executable's are, which dropping leaves in the page cache.
    static func droppable(smaps: String, executable: String) -> [Range<UInt>] {
        var ranges: [Range<UInt>] = []
        /// The executable's read-only mapping being read, and how many of its private-page fields
        /// said zero so far.
        var candidate: (range: Range<UInt>, clean: Int)?
        func finish() {
            if let candidate, candidate.clean == privateFields.count { ranges.append(candidate.range) }
            candidate = nil
        }
        for line in smaps.split(separator: "\n") {
            if let mapping = mapping(header: line) {
                finish()
                if mapping.path == executable, !mapping.permissions.contains("w") { candidate = (mapping.range, 0) }
                continue
            }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let field = fields.first, privateFields.contains(field), fields.count > 1, fields[1] == "0" {
                candidate?.clean += 1
            }
        }
        finish()
        return ranges
    }

    /// A mapping's header line in smaps, `start-end perms offset dev inode [path]` (the path may
    /// hold spaces), or nil for any other line.
    static func mapping(header line: Substring) -> (range: Range<UInt>, permissions: Substring, path: Substring)? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5, !fields[0].hasSuffix(":") else { return nil }
        let bounds = fields[0].split(separator: "-")
        guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
              start < end else { return nil }
        return (start..<end, fields[1], fields.count == 6 ? fields[5].drop(while: { $0 == " " }) : "")
    }

    /// The smaps fields that count a mapping's private pages; all must be zero.
    private static let privateFields: Set<Substring> = ["Anonymous:", "Swap:"]
}
