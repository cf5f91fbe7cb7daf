import Foundation

/// A filesystem storage root that tests switch off and on: a symbolic link to a folder, atomically
/// switched to a link to a plain file (every write under it then fails with ENOTDIR) and back.
/// Faster than moto for many large crashes.
struct SwitchableRoot: Sendable {
    let root: String
    private let base: String

    /// Creates `base/crashes` pointing at `base/store`, up.
    init(in base: String) throws {
        self.base = base
        root = base + "/crashes"
        try FileManager.default.createDirectory(atPath: base + "/store", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: base + "/down", contents: Data("storage is down\n".utf8))
        try up()
    }

    @Sendable func up() throws { try point(at: base + "/store") }
    @Sendable func down() throws { try point(at: base + "/down") }

    /// Points the root at `target`, atomically (a new link renamed over the old one).
    private func point(at target: String) throws {
        let link = base + "/link-\(UUID().uuidString)"
        guard symlink(target, link) == 0, rename(link, root) == 0 else { throw POSIXError(.EIO) }
    }
}
