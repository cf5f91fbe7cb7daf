import Foundation

/// A tmpfs of a few KiB mounted on a temporary folder, to fill a disk for real.
/// Mounting needs root (CAP_SYS_ADMIN), as in the CI container.
struct SmallDisk {
    struct CannotMount: Error, CustomStringConvertible {
        let description = "mounting a small tmpfs needs root (CAP_SYS_ADMIN): run the tests as root, as the CI container does"
    }

    let path: String

    static func mount(size: String = "64k") throws -> SmallDisk {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("breakwater-disk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard run("/bin/mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path) == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw CannotMount()
        }
        return SmallDisk(path: path)
    }

    func unmount() {
        _ = Self.run("/bin/umount", path)
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func run(_ tool: String, _ arguments: String...) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
