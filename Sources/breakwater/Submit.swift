import ArgumentParser
import Collector
import CrashClient
import Foundation

/// `breakwater submit URL`: posts crash reports to any collector and prints its answers.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Post crash reports to a collector and print its answers.",
        discussion: """
        Posts the crashes stored under --crashes (the storage layout: v1/raw_crash/<date>/<id>, \
        v1/dump_names/<id>, v1/<dump>/<id>), or --minidump with -a annotations, or synthetic crashes \
        of --size bytes. Prints one line per crash: label, HTTP status (0 when no answer came), body. \
        Exits 1 when a crash got no answer.
        """)

    @Argument(help: "The crash endpoint, e.g. http://localhost:8000/submit.")
    var url: String

    @Option(help: "Post the crashes stored under this folder (e.g. CRASHSTORAGE_FS_ROOT).")
    var crashes: String?

    @Option(name: .customLong("crash-id"), help: "With --crashes: post only this crash.")
    var crashID: String?

    @Option(help: "Post this minidump file as upload_file_minidump.")
    var minidump: String?

    @Option(name: [.customShort("a"), .customLong("annotation")], help: "An annotation name=value (repeatable).")
    var annotations: [String] = []

    @Option(help: "How many crashes to post (minidump and synthetic).")
    var count = 1

    @Option(help: "Crashes per second, sent on schedule without waiting for answers (default: one after another).")
    var rate: Double?

    @Option(help: "Synthetic dump size in bytes.")
    var size = 65536

    @Option(help: "Seconds to wait for each answer.")
    var timeout = 60.0

    @Flag(help: "Gzip the bodies (Content-Encoding: gzip), as Crashpad does.")
    var gzip = false

    func validate() throws {
        if crashes != nil && minidump != nil { throw ValidationError("--crashes and --minidump exclude each other.") }
        if crashID != nil && crashes == nil { throw ValidationError("--crash-id needs --crashes.") }
        if let bad = annotations.first(where: { !$0.contains("=") }) { throw ValidationError("-a \(bad): expected name=value.") }
        if count < 1 || size < 0 || timeout <= 0 {
            throw ValidationError("--count must be at least 1, --size at least 0, --timeout above 0.")
        }
        guard URL(string: url)?.host != nil else { throw ValidationError("\(url): not an http(s) URL.") }
    }

    func run() async throws {
        let submitter = CrashSubmitter(url: url, gzip: gzip, timeout: timeout)
        let pairs = annotations.map { a -> (name: String, value: String) in
            let eq = a.firstIndex(of: "=")!
            return (String(a[..<eq]), String(a[a.index(after: eq)...]))
        }
        let printAnswer: @Sendable (CrashSubmitter.Answer) -> Void = { print($0.line) }
        let answers: [CrashSubmitter.Answer]
        if let crashes {
            let stored = try SubmittedCrash.stored(root: crashes, crashID: crashID)
            answers = try await submitter.run(count: stored.count, rate: rate, make: { stored[$0] }, onAnswer: printAnswer)
        } else if let minidump {
            let crash = try SubmittedCrash.minidump(path: minidump, annotations: pairs)
            answers = try await submitter.run(count: count, rate: rate, make: { _ in crash }, onAnswer: printAnswer)
        } else {
            let size = self.size
            answers = try await submitter.run(count: count, rate: rate, make: {
                SubmittedCrash.synthetic(index: $0, size: size, annotations: pairs)
            }, onAnswer: printAnswer)
        }
        let byStatus = Dictionary(grouping: answers, by: \.status).map { "\($0.key): \($0.value.count)" }.sorted()
        FileHandle.standardError.write(Data("sent \(answers.count) (status: \(byStatus.joined(separator: ", ")))\n".utf8))
        if answers.contains(where: { $0.status == 0 }) { throw ExitCode(1) }
    }
}
