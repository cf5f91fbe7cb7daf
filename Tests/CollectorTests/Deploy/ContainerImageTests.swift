import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The OCI image `scripts/image` builds offline: its configuration (the same as the Dockerfile's
/// run stage), its file list (the binary, exactly the libraries `ldd` reports, CA certificates,
/// a passwd entry, the configuration) and, since `podman run` cannot start containers in these
/// sandboxes, its root filesystem started with `scripts/image run` (chroot into the image's own
/// read-only bytes, as the image's user) answering a heartbeat and storing a crash.
@Suite(.serialized) struct ContainerImageTests {
    @Test func configMatchesTheDockerfile() throws {
        _ = try ContainerImage.built()
        let inspect = try Tools.run(try ContainerImage.podman(), ["image", "inspect", "--format", "{{json .Config}}", ContainerImage.name])
        try #require(inspect.status == 0, "\(inspect.output)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(inspect.output.utf8)) as? [String: Any])
        let dockerfile = try ContainerImage.dockerfile()

        #expect(config["Entrypoint"] as? [String] == ["/app/breakwater"])
        #expect(config["Cmd"] as? [String] == ["serve"])
        #expect(config["User"] as? String == "10001:10001")
        #expect(config["WorkingDir"] as? String == "/app")
        #expect((config["ExposedPorts"] as? [String: Any]).map { Array($0.keys) } == ["8000/tcp"])
        #expect((config["Volumes"] as? [String: Any]).map { Array($0.keys) } == ["/app/spool"])
        #expect(config["StopSignal"] as? String == "SIGTERM")
        let env = Set(config["Env"] as? [String] ?? [])
        #expect(env.contains("PORT=8000") && env.contains("SPOOL_DIR=/app/spool"))

        // The Dockerfile's run stage says the same.
        func json(_ text: String?) -> [String]? {
            text.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
        }
        #expect(json(dockerfile["ENTRYPOINT"]) == config["Entrypoint"] as? [String])
        #expect(json(dockerfile["CMD"]) == config["Cmd"] as? [String])
        #expect(json(dockerfile["VOLUME"]).map { Set($0) } == (config["Volumes"] as? [String: Any]).map { Set($0.keys) })
        #expect(dockerfile["USER"] == config["User"] as? String)
        #expect(dockerfile["WORKDIR"] == config["WorkingDir"] as? String)
        #expect(dockerfile["EXPOSE"].map { "\($0)/tcp" } == (config["ExposedPorts"] as? [String: Any])?.keys.first)
        #expect(dockerfile["STOPSIGNAL"] == config["StopSignal"] as? String)
        let dockerfileEnv = Set((dockerfile["ENV"] ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        #expect(!dockerfileEnv.isEmpty && dockerfileEnv.isSubset(of: env), "Dockerfile ENV \(dockerfileEnv.subtracting(env)) not in the image")
    }

    @Test func filesAreTheBinaryItsLibrariesAndNothingElse() throws {
        _ = try ContainerImage.built()
        let root = try ContainerImage.mount()
        defer { ContainerImage.unmount() }
        var files: Set<String> = [], folders: Set<String> = []
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        while let path = enumerator.nextObject() as? String {
            let type = enumerator.fileAttributes?[.type] as? FileAttributeType
            if type == .typeDirectory { folders.insert(path) } else { files.insert(path) }
        }

        // Exactly the libraries ldd reports for the two executables (the loader included), and
        // librabbitmq, which the collector loads at run time for QUEUE=rabbitmq, with its own.
        let rabbitmq = "lib/x86_64-linux-gnu/librabbitmq.so.4"  // where ld.so.cache (ldconfig -p) has it, like the others
        #expect(FileManager.default.fileExists(atPath: root + "/" + rabbitmq))
        var libraries: Set<String> = [rabbitmq]
        for executable in ["app/breakwater", "app/swift-backtrace-static", rabbitmq] {
            let ldd = try Tools.run("/usr/bin/ldd", [root + "/" + executable])
            for line in ldd.output.split(separator: "\n") {
                let words = line.split(separator: " ")
                if let arrow = words.firstIndex(of: "=>"), arrow + 1 < words.count, words[arrow + 1].hasPrefix("/") {
                    libraries.insert(String(words[arrow + 1].dropFirst()))
                } else if let first = words.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("/") {
                    libraries.insert(String(first.dropFirst()))
                }
            }
        }
        #expect(libraries.contains { $0.contains("libc.so") }, "ldd found no libc: \(libraries)")
        let configFiles = try #require(FileManager.default.subpaths(atPath: Tools.path("config")))
            .filter { !Self.isFolder(Tools.path("config/" + $0)) }.map { "app/config/" + $0 }
        let expected = Set(["app/breakwater", "app/swift-backtrace-static", "app/version.json", "etc/passwd", "etc/group",
                            "etc/nsswitch.conf", "etc/hosts", "etc/ssl/certs/ca-certificates.crt"] + configFiles).union(libraries)
        #expect(files.subtracting(expected).isEmpty, "unexpected files in the image: \(files.subtracting(expected).sorted())")
        #expect(expected.subtracting(files).isEmpty, "missing from the image: \(expected.subtracting(files).sorted())")
        // Folders that hold nothing: the volume and the runtime's mount points.
        let empty = folders.filter { folder in !files.contains { $0.hasPrefix(folder + "/") } }
        #expect(empty == ["app/spool", "proc", "sys", "dev", "tmp"], "\(empty.sorted())")

        // Root owns everything but the outbox; the user can write nowhere else (but /tmp).
        for path in files.union(folders) {
            let attributes = try FileManager.default.attributesOfItem(atPath: root + "/" + path)
            let owner = (attributes[.ownerAccountID] as? NSNumber)?.intValue
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            if path == "app/spool" {
                #expect(owner == 10001)
            } else {
                #expect(owner == 0, "\(path) owned by \(owner ?? -1)")
                #expect(mode & 0o002 == 0 || path == "tmp", "\(path) is writable by everyone")
            }
        }
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("breakwater:x:10001:10001:"))

        // Debug symbols are stripped from the image's binary (the build folder's still has them).
        func sections(_ file: String) throws -> String { try Tools.run("/usr/bin/readelf", ["-S", "--wide", file]).output }
        #expect(try sections(root + "/app/breakwater").contains(".text"))
        #expect(!(try sections(root + "/app/breakwater")).contains(".debug_"))
        #expect(try sections(ContainerImage.releaseBinary()).contains(".debug_"))
        print("image: \(try ContainerImage.built().split(separator: "\n").last ?? "")")
    }

    /// The release build lays out the functions serving runs next to each other
    /// (`scripts/release-build` gives each its own section, Package.swift hands lld the order in
    /// `hot-functions.txt`), so that the 64 KB windows the kernel maps around each code page touched
    /// hold hot code rather than cold neighbours. Fails when the list has gone stale (run
    /// `bench/hot-functions`) or the build stops applying it.
    @Test func servingFunctionsAreLaidOutTogether() throws {
        _ = try ContainerImage.built()
        let listed = Set(try String(contentsOfFile: Tools.path("Sources/breakwater/hot-functions.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") })
        let symbols = try Tools.run("/usr/bin/nm", ["--defined-only", try ContainerImage.releaseBinary()])
        try #require(symbols.status == 0, "\(symbols.output.prefix(500))")
        var found: [Substring: UInt] = [:]
        var text: (low: UInt, high: UInt) = (.max, 0)  // every function's address, listed or not
        for line in symbols.output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, "tTwW".contains(fields[1]), let address = UInt(fields[0], radix: 16) else { continue }
            text = (min(text.low, address), max(text.high, address))
            if listed.contains(fields[2]) { found[fields[2]] = address }
        }
        #expect(listed.count > 1_000, "hot-functions.txt lists \(listed.count) functions")
        // Renamed or removed functions drop out of the list; past a fifth, it no longer describes the code.
        #expect(found.count * 5 >= listed.count * 4, "\(found.count) of \(listed.count) listed functions are in the binary")
        let span = (found.values.max() ?? 0) - (found.values.min() ?? 0)
        #expect(span < 6 << 20, "the listed functions spread over \(span >> 10) KB of the \((text.high - text.low) >> 10) KB of code")
        print("hot functions: \(found.count) of \(listed.count) within \(span >> 10) KB of \((text.high - text.low) >> 10) KB of code")
    }

    /// Also queues it on the real broker: the image carries rabbitmq-c, which the collector loads
    /// at run time rather than links.
    @Test func rootFilesystemAnswersAHeartbeatAndStoresACrash() async throws {
        _ = try ContainerImage.built()
        let broker = try RabbitMQTestBroker()
        let queue = broker.uniqueQueue()
        // The container's /tmp, on the host: the crashes are stored there.
        let tmp = try Tools.temporaryFolder("image-tmp")
        #expect(chown(tmp, 10001, 10001) == 0)
        let log = tmp + ".log"
        let port = Tools.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tools.path("scripts/image"))
        process.arguments = ["run", "-e", "PORT=\(port)", "-e", "HOST=127.0.0.1", "-e", "STATSD_PORT=9",
                             "-e", "CRASHSTORAGE=fs", "-e", "CRASHSTORAGE_FS_ROOT=/tmp/crashes", "-v", "\(tmp):/tmp",
                             "-e", "CRASHQUEUE=rabbitmq", "-e", "RABBITMQ_URL=\(broker.url)", "-e", "RABBITMQ_QUEUE=\(queue)"]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // The collector is the script's child (entered with exec). Signals go to it directly: a
        // script started from this process may inherit SIGTERM ignored, and then cannot trap it.
        func collector() -> Int32? {
            let wrapper = process.processIdentifier
            let children = try? String(contentsOfFile: "/proc/\(wrapper)/task/\(wrapper)/children", encoding: .utf8)
            return children?.split(separator: " ").first.flatMap { Int32($0) }
        }
        defer { if process.isRunning, let pid = collector() { kill(pid, SIGKILL) } }
        let end = Date().addingTimeInterval(30)
        while (try? RawConnection(port: port)) == nil {
            guard Date() < end, process.isRunning else {
                Issue.record("the image's collector did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                return
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }

        func get(_ path: String) throws -> String {
            let connection = try RawConnection(port: port)
            _ = connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return connection.readAll(timeout: 5)
        }
        let heartbeat = try get("/__heartbeat__")
        #expect(heartbeat.hasPrefix("HTTP/1.1 200"), "\(heartbeat)")
        #expect(heartbeat.contains("\"status\":\"ok\""), "\(heartbeat)")
        #expect(try get("/__version__").contains("\"build\":\"scripts/image\""))

        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.field("Version", "1.0")
        let dump = Fixtures.bytes("linux-mini.dmp")
        form.file("upload_file_minidump", dump)
        let body = form.finished.bytes
        let connection = try RawConnection(port: port)
        _ = connection.send(RawConnection.head(contentType: form.contentType, contentLength: body.count, extra: "Connection: close\r\n"))
        connection.send(body)
        let answer = connection.readAll(timeout: 10)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        let crashID = try #require(answer.firstMatch(of: #/CrashID=bp-([0-9a-f-]{36})/#)?.output.1, "\(answer)")

        // Stored by the image's user, byte for byte.
        let stored = tmp + "/crashes/v1/dump/\(crashID)"
        #expect(FileManager.default.contents(atPath: stored).map { [UInt8]($0) } == dump)
        #expect(((try? FileManager.default.attributesOfItem(atPath: stored))?[.ownerAccountID] as? NSNumber)?.intValue == 10001)
        let rawCrashes = FileManager.default.subpaths(atPath: tmp + "/crashes/v1/raw_crash") ?? []
        #expect(rawCrashes.contains { $0.hasSuffix("/" + String(crashID)) })
        #expect(try broker.drain(queue).map(\.body) == [String(crashID)])
        try broker.delete(queue)

        // STOPSIGNAL: SIGTERM drains and exits 0.
        let pid = try #require(collector())
        #expect(kill(pid, SIGTERM) == 0)
        let stop = Date().addingTimeInterval(30)
        while process.isRunning && Date() < stop { try await Task.sleep(nanoseconds: 50_000_000) }
        #expect(!process.isRunning && process.terminationStatus == 0)
        let lines = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(lines.contains("\"outcome\":\"accepted\""), "\(lines)")
    }

    static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }
}

/// The image under test and the tools around it.
enum ContainerImage {
    static let name = "breakwater:latest"

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// `scripts/image`, run once per test process: incremental, so seconds when `scripts/test`
    /// has just built it; a test run alone builds it (the release build takes minutes).
    private static let build: Result<String, Failure> = {
        do {
            let result = try Tools.run(Tools.path("scripts/image"), ["build"], cwd: Tools.root.path)
            return result.status == 0 ? .success(result.output) : .failure(Failure(description: "scripts/image: \(result.output)"))
        } catch {
            return .failure(Failure(description: "scripts/image: \(error)"))
        }
    }()

    /// What scripts/image printed; its last line is the image's size.
    static func built() throws -> String { try build.get() }

    static func podman() throws -> String {
        try #require(Tools.which("podman"), "podman is missing: scripts/image installs it")
    }

    /// The image's root filesystem, read-only, as podman stores it.
    static func mount() throws -> String {
        let result = try Tools.run(try podman(), ["image", "mount", name])
        try #require(result.status == 0, "\(result.output)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func unmount() { _ = try? Tools.run((try? podman()) ?? "/usr/bin/podman", ["image", "unmount", name]) }

    /// The release build's binary, before stripping.
    static func releaseBinary() throws -> String {
        let result = try Tools.run(Tools.path("scripts/release-build"), ["--scratch-path", ".build-release", "--show-bin-path"],
                                   cwd: Tools.root.path)
        return result.output.split(separator: "\n").last.map(String.init)! + "/breakwater"
    }

    /// The Dockerfile's run stage (after its last FROM): each instruction's arguments, continuation
    /// lines joined (a repeated instruction keeps the last).
    static func dockerfile() throws -> [String: String] {
        let text = try String(contentsOfFile: Tools.path("Dockerfile"), encoding: .utf8)
            .replacingOccurrences(of: "\\\n", with: " ")
        var stage: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let words = line.split(separator: " ", maxSplits: 1)
            guard let instruction = words.first.map({ String($0).uppercased() }) else { continue }
            if instruction == "FROM" { stage = [:] }
            stage[instruction] = words.count > 1 ? String(words[1]).trimmingCharacters(in: .whitespaces) : ""
        }
        return stage
    }

    /// The run stage's user id, which the Kubernetes manifests run as.
    static var dockerfileUser: Int? {
        (try? dockerfile()["USER"])?.split(separator: ":").first.flatMap { Int($0) }
    }
}
