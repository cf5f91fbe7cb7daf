import Foundation
import Testing
@testable import Collector

/// The Heroku deploy files: app.json as Heroku reads it, the Procfile command, the Swift version
/// and the system packages the build needs.
@Suite struct HerokuTests {
    static func appJSON() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Tools.path("app.json")))) as! [String: Any]
    }

    /// The executable Package.swift builds.
    static func executableName() throws -> String {
        let manifest = try String(contentsOfFile: Tools.path("Package.swift"), encoding: .utf8)
        return String(try #require(manifest.firstMatch(of: #/\.executable\(name: "([^"]+)"/#)).output.1)
    }

    @Test func appJSONHasTheFieldsHerokuReads() throws {
        let app = try Self.appJSON()
        // https://devcenter.heroku.com/articles/app-json-schema: unknown keys are a sign of a typo.
        let known: Set = ["name", "description", "keywords", "website", "repository", "logo", "success_url", "scripts",
                          "env", "formation", "image", "addons", "buildpacks", "environments", "stack"]
        #expect(Set(app.keys).subtracting(known).isEmpty, "unknown keys: \(Set(app.keys).subtracting(known))")
        let name = try #require(app["name"] as? String)
        #expect(!name.isEmpty && name.count <= 30)
        #expect((app["description"] as? String)?.isEmpty == false)
        let buildpacks = try #require(app["buildpacks"] as? [[String: String]])
        #expect(buildpacks.last?["url"] == "vapor/vapor", "the Swift buildpack must run last: it builds the app")
        #expect(app["success_url"] as? String == "/__heartbeat__")
        if let addons = app["addons"] as? [Any] {
            #expect(addons.isEmpty, "add-ons are optional: documented, not provisioned")
        }
    }

    @Test func formationMatchesTheProcfile() throws {
        let formation = try #require(try Self.appJSON()["formation"] as? [String: [String: Any]])
        let procfile = try String(contentsOfFile: Tools.path("Procfile"), encoding: .utf8)
        let processes = Set(procfile.split(separator: "\n").compactMap { $0.split(separator: ":").first.map(String.init) })
        #expect(Set(formation.keys).isSubset(of: processes))
        for (_, process) in formation {
            #expect((process["quantity"] as? Int ?? 0) >= 1)
            #expect(["eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l"].contains(process["size"] as? String ?? ""))
        }
    }

    @Test func envEntriesAreDescribedAndRead() async throws {
        let env = try #require(try Self.appJSON()["env"] as? [String: [String: Any]])
        let read = Set(CollectorConfiguration().described.map(\.name))
        var defaults: [String: String] = [:]
        for (key, entry) in env {
            #expect(key.wholeMatch(of: #/[A-Z_][A-Z0-9_]*/#) != nil)
            #expect(read.contains(key), "\(key) is not a setting the collector reads")
            #expect(((entry["description"] as? String)?.count ?? 0) > 10, "\(key) needs a description")
            #expect(Set(entry.keys).isSubset(of: ["description", "value", "required", "generator"]))
            if let value = entry["value"] { defaults[key] = try #require(value as? String) }
            if let required = entry["required"] { #expect(required is Bool) }
        }
        #expect(env["CRASHQUEUE"]?["description"].map { "\($0)".contains("CLOUDAMQP_URL") } == true)
        // The defaults, with the PORT Heroku sets, make a valid configuration.
        defaults["PORT"] = "5123"
        let config = try await CollectorConfiguration.load(environment: defaults)
        #expect(config.port == 5123)
    }

    @Test func procfileRunsTheBuiltExecutable() throws {
        let procfile = try String(contentsOfFile: Tools.path("Procfile"), encoding: .utf8)
        let web = try #require(procfile.split(separator: "\n").first { $0.hasPrefix("web:") })
        let words = web.dropFirst("web:".count).split(separator: " ")
        // The vapor buildpack copies built executables onto PATH and deletes .build.
        #expect(words.first.map(String.init) == (try Self.executableName()))
        #expect(words.dropFirst().first == "serve")
        let help = try Tools.run(Tools.breakwater, ["serve", "--help"])
        #expect(help.status == 0, "\(help.output)")
        #expect(help.output.contains("USAGE: breakwater serve"))
    }

    @Test func swiftVersionAndSystemPackages() throws {
        let version = try String(contentsOfFile: Tools.path(".swift-version"), encoding: .utf8)
        #expect(version == "6.3\n")
        // The apt buildpack installs what the system library targets need.
        let manifest = try String(contentsOfFile: Tools.path("Package.swift"), encoding: .utf8)
        // Package.swift's `cLibraries` table: (target, pkg-config name, Debian package).
        let needed = manifest.matches(of: #/\("C\w+", "[^"]+", "([^"]+)"\)/#).map { String($0.output.1) }
        let aptfile = try String(contentsOfFile: Tools.path("Aptfile"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(!needed.isEmpty)
        #expect(Set(needed) == Set(aptfile))
    }
}
