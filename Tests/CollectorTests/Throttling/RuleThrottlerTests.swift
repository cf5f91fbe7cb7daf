import Foundation
import Testing
import Telemetry
@testable import Collector

/// Always the same draw: 0.05 takes a 10% split's `then`, 0.5 its `else`.
struct FixedThrottleRandom: ThrottleRandomSource {
    let value: Double
    func next() -> Double { value }
}

/// SplitMix64 behind a lock: deterministic, and safe for concurrent workers.
final class SeededThrottleRandom: ThrottleRandomSource, @unchecked Sendable {
    private let lock = NSLock()
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    func next() -> Double {
        lock.lock()
        defer { lock.unlock() }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}

/// Rule files, a fixed clock and JSON annotations shared by the rule throttler tests.
enum ThrottleFixtures {
    static let root = Tools.root
    static let mozillaPath = root.appendingPathComponent("config/throttle/mozilla.yaml").path
    static let acceptAll = root.appendingPathComponent("config/throttle/accept-all.yaml").path
    /// 2025-06-01T12:00:00Z: 730 days earlier is 2023-06-02T12:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_748_779_200)

    static let windows81 = #"{"system":{"os":{"name":"Windows_NT","windowsBuildNumber":9600}}}"#
    static let windows10 = #"{"system":{"os":{"name":"Windows_NT","windowsBuildNumber":10240}}}"#
}

/// A crash for the mozilla rules, with a random draw, and what it must get.
struct MozillaRuleCase: Sendable, CustomTestStringConvertible {
    let label: String
    let annotations: [String: String]
    var random = 0.5
    let result: ThrottleResult
    let rule: String

    var testDescription: String { label }
}

/// Each mozilla rule: crashes that hit it, and crashes that just miss it (ending at a later rule).
extension ThrottleFixtures {
    static let mozillaCases: [MozillaRuleCase] = [
        .init(label: "has_old_buildid hit: 730 days and a half", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "BuildID": "20230602000000"], result: .reject, rule: "has_old_buildid"),
        .init(label: "has_old_buildid miss: 729 days and a half", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "BuildID": "20230603000000"], result: .accept, rule: "is_nightly"),
        .init(label: "has_old_buildid miss: 13 digits", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "BuildID": "2016010100000"], result: .accept, rule: "is_nightly"),
        .init(label: "has_old_buildid miss: not a date", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "BuildID": "20161301000000"], result: .accept, rule: "is_nightly"),

        .init(label: "has_hangid_and_browser hit: no ProcessType", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "HangID": "abc"], result: .reject, rule: "has_hangid_and_browser"),
        .init(label: "has_hangid_and_browser hit: browser", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "HangID": "", "ProcessType": "browser"], result: .reject, rule: "has_hangid_and_browser"),
        .init(label: "has_hangid_and_browser miss: content", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "HangID": "abc", "ProcessType": "content"], result: .accept, rule: "is_nightly"),

        .init(label: "infobar_is_true hit", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "SubmittedFromInfobar": "true", "Version": "59.0.2", "BuildID": "20171225"], result: .reject, rule: "infobar_is_true"),
        .init(label: "infobar_is_true miss: BuildID 20171226", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "SubmittedFromInfobar": "true", "Version": "59.0.2", "BuildID": "20171226"], result: .accept, rule: "is_nightly"),
        .init(label: "infobar_is_true miss: Version 60", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "SubmittedFromInfobar": "true", "Version": "60.0", "BuildID": "20171225"], result: .accept, rule: "is_nightly"),
        .init(label: "infobar_is_true miss: Version 5.0", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "SubmittedFromInfobar": "true", "Version": "5.0", "BuildID": "20171225"], result: .accept, rule: "is_nightly"),
        .init(label: "infobar_is_true miss: empty BuildID", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly", "SubmittedFromInfobar": "true", "Version": "59.0", "BuildID": ""], result: .accept, rule: "is_nightly"),

        .init(label: "b2g hit: B2G", annotations: ["ProductName": "B2G"], result: .fakeaccept, rule: "b2g"),
        .init(label: "b2g hit: b2g", annotations: ["ProductName": "b2g"], result: .fakeaccept, rule: "b2g"),
        .init(label: "b2g miss: B2G OS", annotations: ["ProductName": "B2G OS"], result: .reject, rule: "unsupported_product"),

        .init(label: "unsupported_product hit: Fennec", annotations: ["ProductName": "Fennec"], result: .reject, rule: "unsupported_product"),
        .init(label: "unsupported_product hit: no ProductName", annotations: ["ReleaseChannel": "nightly"], result: .reject, rule: "unsupported_product"),
        .init(label: "unsupported_product hit: firefox", annotations: ["ProductName": "firefox"], result: .reject, rule: "unsupported_product"),
        .init(label: "unsupported_product miss: Firefox Enterprise", annotations: ["ProductName": "Firefox Enterprise"], result: .accept, rule: "accept_everything"),

        .init(label: "unsupported_packagename hit: Fenix old nightly", annotations: ["ProductName": "Fenix", "Android_PackageName": "org.mozilla.fenix.nightly"], result: .reject, rule: "unsupported_packagename"),
        .init(label: "unsupported_packagename hit: Fenix without package", annotations: ["ProductName": "Fenix"], result: .reject, rule: "unsupported_packagename"),
        .init(label: "unsupported_packagename hit: Focus as Fenix", annotations: ["ProductName": "Focus", "Android_PackageName": "org.mozilla.firefox"], result: .reject, rule: "unsupported_packagename"),
        .init(label: "unsupported_packagename hit: ReferenceBrowser", annotations: ["ProductName": "ReferenceBrowser", "Android_PackageName": "org.mozilla.reference"], result: .reject, rule: "unsupported_packagename"),
        .init(label: "unsupported_packagename miss: Fenix", annotations: ["ProductName": "Fenix", "Android_PackageName": "org.mozilla.firefox_beta"], result: .accept, rule: "accept_everything"),
        .init(label: "unsupported_packagename miss: Klar", annotations: ["ProductName": "Focus", "Android_PackageName": "org.mozilla.klar"], result: .accept, rule: "accept_everything"),
        .init(label: "unsupported_packagename miss: Firefox has no list", annotations: ["ProductName": "Thunderbird"], result: .accept, rule: "accept_everything"),

        .init(label: "throttleable_0 hit", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "Throttleable": "0"], result: .accept, rule: "throttleable_0"),
        .init(label: "throttleable_0 miss", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "Throttleable": "1"], result: .reject, rule: "is_firefox_desktop"),

        .init(label: "has_comments hit (even empty)", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "Comments": ""], result: .accept, rule: "has_comments"),
        .init(label: "has_comments miss", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "Comment": "typo"], result: .reject, rule: "is_firefox_desktop"),

        .init(label: "has_phc hit", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "PHCKind": "FreedPage"], result: .accept, rule: "has_phc"),
        .init(label: "has_phc miss", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "PHCBaseAddress": "1"], result: .reject, rule: "is_firefox_desktop"),

        .init(label: "is_background hit: utility", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "ProcessType": "utility"], result: .accept, rule: "is_background"),
        .init(label: "is_background hit: gpu", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "ProcessType": "gpu"], result: .accept, rule: "is_background"),
        .init(label: "is_background miss: content", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release", "ProcessType": "content"], result: .reject, rule: "is_firefox_desktop"),

        .init(label: "is_shutdownkill hit: rejected 90%", annotations: ["ProductName": "Firefox", "ReleaseChannel": "beta", "ipc_channel_error": "ShutDownKill"], result: .reject, rule: "is_shutdownkill"),
        .init(label: "is_shutdownkill hit: 10% continue", annotations: ["ProductName": "Firefox", "ReleaseChannel": "beta", "ipc_channel_error": "ShutDownKill"], random: 0.05, result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_shutdownkill miss", annotations: ["ProductName": "Firefox", "ReleaseChannel": "beta", "ipc_channel_error": "ShutDownKil"], result: .accept, rule: "is_alpha_beta_esr"),

        .init(label: "is_firefox_esr_unsupported_windows hit: rejected 75%", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": ThrottleFixtures.windows81], result: .reject, rule: "is_firefox_esr_unsupported_windows"),
        .init(label: "is_firefox_esr_unsupported_windows hit: 25% continue", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": ThrottleFixtures.windows81], random: 0.2, result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: Windows 10", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": ThrottleFixtures.windows10], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: build 0", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": #"{"system":{"os":{"name":"Windows_NT","windowsBuildNumber":0}}}"#], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: build as string", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": #"{"system":{"os":{"name":"Windows_NT","windowsBuildNumber":"9600"}}}"#], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: Linux", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": #"{"system":{"os":{"name":"Linux","windowsBuildNumber":9600}}}"#], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: not JSON", annotations: ["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": "{system"], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_firefox_esr_unsupported_windows miss: Thunderbird", annotations: ["ProductName": "Thunderbird", "ReleaseChannel": "esr", "TelemetryEnvironment": ThrottleFixtures.windows81], result: .accept, rule: "is_alpha_beta_esr"),

        .init(label: "is_alpha_beta_esr hit: aurora", annotations: ["ProductName": "Firefox", "ReleaseChannel": "aurora"], result: .accept, rule: "is_alpha_beta_esr"),
        .init(label: "is_alpha_beta_esr miss: betas", annotations: ["ProductName": "Firefox", "ReleaseChannel": "betas"], result: .accept, rule: "accept_everything"),

        .init(label: "is_nightly hit: nightly-cck", annotations: ["ProductName": "Firefox", "ReleaseChannel": "nightly-cck"], result: .accept, rule: "is_nightly"),
        .init(label: "is_nightly miss: Nightly", annotations: ["ProductName": "Firefox", "ReleaseChannel": "Nightly"], result: .accept, rule: "accept_everything"),

        .init(label: "is_firefox_desktop hit: 10% accepted", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release"], random: 0.05, result: .accept, rule: "is_firefox_desktop"),
        .init(label: "is_firefox_desktop hit: draw of exactly 10 accepted", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release"], random: 0.1, result: .accept, rule: "is_firefox_desktop"),
        .init(label: "is_firefox_desktop hit: 90% rejected", annotations: ["ProductName": "Firefox", "ReleaseChannel": "release"], result: .reject, rule: "is_firefox_desktop"),
        .init(label: "is_firefox_desktop miss: Thunderbird release", annotations: ["ProductName": "Thunderbird", "ReleaseChannel": "release"], result: .accept, rule: "accept_everything"),

        .init(label: "accept_everything hit", annotations: ["ProductName": "MozillaVPN"], result: .accept, rule: "accept_everything"),
    ]
}

@Suite("RuleThrottler")
struct RuleThrottlerTests {
    func crash(_ annotations: [String: String]) -> CrashReport {
        CrashReport(annotations: annotations.mapValues(JSONValue.string), payloadKind: "multipart")
    }

    /// The shipped mozilla rules with a fixed draw and the fixed clock.
    func mozilla(random: Double = 0.5) throws -> RuleThrottler {
        try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: FixedThrottleRandom(value: random), now: { ThrottleFixtures.now })
    }

    func rules(_ yaml: String, random: ThrottleRandomSource = FixedThrottleRandom(value: 0.5)) throws -> RuleThrottler {
        try RuleThrottler(text: yaml, file: "test.yaml", random: random, now: { ThrottleFixtures.now })
    }

    @Test("mozilla.yaml holds Antenna's rules in Antenna's order")
    func mozillaOrder() throws {
        let throttler = try mozilla()
        #expect(throttler.rules.map(\.name) == [
            "has_old_buildid", "has_hangid_and_browser", "infobar_is_true", "b2g", "unsupported_product",
            "unsupported_packagename", "throttleable_0", "has_comments", "has_phc", "is_background",
            "is_shutdownkill", "is_firefox_esr_unsupported_windows", "is_alpha_beta_esr", "is_nightly",
            "is_firefox_desktop", "accept_everything",
        ])
        #expect(throttler.fallback == ThrottleDecision(.reject, rule: "NO_MATCH"))
    }

    @Test("mozilla rules", arguments: ThrottleFixtures.mozillaCases)
    func mozillaRule(_ c: MozillaRuleCase) throws {
        let decision = try mozilla(random: c.random).throttle(crash(c.annotations))
        #expect(decision == ThrottleDecision(c.result, rule: c.rule))
    }

    @Test("accept-all.yaml accepts everything")
    func acceptAll() throws {
        let throttler = try RuleThrottler(contentsOfFile: ThrottleFixtures.acceptAll)
        #expect(throttler.throttle(crash([:])) == ThrottleDecision(.accept, rule: "accept_everything"))
        #expect(throttler.throttle(crash(["ProductName": "Fennec"])) == ThrottleDecision(.accept, rule: "accept_everything"))
    }

    // MARK: percentages

    /// Runs CPU-bound loops on a Dispatch thread: Swift concurrency's few threads (two on a
    /// two-core machine) stay free for the HTTP tests running alongside.
    func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { done in DispatchQueue.global().async { done.resume(returning: work()) } }
    }

    /// Share of `count` decisions equal to `expected`, in percent.
    func share(_ throttler: RuleThrottler, _ report: CrashReport, _ expected: ThrottleDecision, count: Int = 20_000) async -> Double {
        let hits = await offPool { (0..<count).filter { _ in throttler.throttle(report) == expected }.count }
        return Double(hits) * 100 / Double(count)
    }

    @Test("is_firefox_desktop accepts 10% of Firefox release crashes")
    func firefoxDesktopShare() async throws {
        let throttler = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: SeededThrottleRandom(seed: 1), now: { ThrottleFixtures.now })
        let accepted = await share(throttler, crash(["ProductName": "Firefox", "ReleaseChannel": "release"]), ThrottleDecision(.accept, rule: "is_firefox_desktop"))
        #expect(abs(accepted - 10) <= 1, "accepted \(accepted)%")
    }

    @Test("is_shutdownkill lets 10% continue")
    func shutdownKillShare() async throws {
        let throttler = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: SeededThrottleRandom(seed: 2), now: { ThrottleFixtures.now })
        let report = crash(["ProductName": "Firefox", "ReleaseChannel": "beta", "ipc_channel_error": "ShutDownKill"])
        let continued = await share(throttler, report, ThrottleDecision(.accept, rule: "is_alpha_beta_esr"))
        #expect(abs(continued - 10) <= 1, "continued \(continued)%")
    }

    @Test("is_firefox_esr_unsupported_windows lets 25% continue")
    func esrWindowsShare() async throws {
        let throttler = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: SeededThrottleRandom(seed: 3), now: { ThrottleFixtures.now })
        let report = crash(["ProductName": "Firefox", "ReleaseChannel": "esr", "TelemetryEnvironment": ThrottleFixtures.windows81])
        let continued = await share(throttler, report, ThrottleDecision(.accept, rule: "is_alpha_beta_esr"))
        #expect(abs(continued - 25) <= 1, "continued \(continued)%")
    }

    @Test("concurrent workers share one throttler and one random source")
    func concurrentShare() async throws {
        let throttler = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: SeededThrottleRandom(seed: 4), now: { ThrottleFixtures.now })
        let report = crash(["ProductName": "Firefox", "ReleaseChannel": "release"])
        let accepted = await offPool {
            let counts = NSLock()
            nonisolated(unsafe) var accepted = 0
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                var mine = 0
                for _ in 0..<2_500 where throttler.throttle(report).result == .accept { mine += 1 }
                counts.lock()
                accepted += mine
                counts.unlock()
            }
            return accepted
        }
        #expect(abs(Double(accepted) / 200 - 10) <= 1, "accepted \(accepted) of 20000")
    }

    // MARK: conditions

    @Test("version comparison: ge and lt make a range")
    func versionRange() throws {
        let t = try rules("""
            rules:
              - name: old_firefox
                field: Version
                version: {ge: "52", lt: "60.0"}
                result: reject
              - name: rest
                always: true
                result: accept
            """)
        for v in ["52", "52.0", "59.9.9", "59.0a1", "55.0esr"] {
            #expect(t.throttle(crash(["Version": v])).rule == "old_firefox", "\(v)")
        }
        for v in ["51.9", "60", "60.0a1", "115.0", "x52", ""] {
            #expect(t.throttle(crash(["Version": v])).rule == "rest", "\(v)")
        }
    }

    @Test("case_insensitive on equals, one_of, prefix and regex")
    func caseInsensitive() throws {
        let t = try rules("""
            rules:
              - {name: eq, field: A, equals: Hello, case_insensitive: true, result: accept}
              - {name: set, field: B, one_of: [Beta, Esr], case_insensitive: true, result: accept}
              - {name: pre, field: C, prefix: Night, case_insensitive: true, result: accept}
              - {name: re, field: D, regex: '^b2g$', case_insensitive: true, result: accept}
              - {name: exact, field: E, equals: Hello, result: accept}
            """)
        #expect(t.throttle(crash(["A": "hELLO"])).rule == "eq")
        #expect(t.throttle(crash(["B": "ESR"])).rule == "set")
        #expect(t.throttle(crash(["C": "NIGHTLY-cck"])).rule == "pre")
        #expect(t.throttle(crash(["D": "B2G"])).rule == "re")
        #expect(t.throttle(crash(["E": "hello"])).rule == "NO_MATCH")
        #expect(t.throttle(crash(["D": "xB2G"])).rule == "NO_MATCH")
    }

    @Test("a rule whose field is absent does not match; not makes absence testable")
    func absentField() throws {
        let t = try rules("""
            rules:
              - {name: present, field: A, exists: true, result: accept}
              - {name: absent, not: {field: B, exists: true}, result: defer}
            """)
        #expect(t.throttle(crash(["A": ""])) == ThrottleDecision(.accept, rule: "present"))
        #expect(t.throttle(crash(["C": "x"])) == ThrottleDecision(.defer, rule: "absent"))
        #expect(t.throttle(crash(["B": "x"])) == ThrottleDecision(.reject, rule: "NO_MATCH"))
    }

    @Test("json_path reads JSON annotations, by key and array index, text or already parsed")
    func jsonPath() throws {
        let t = try rules("""
            rules:
              - name: second_module
                field: Modules
                json_path: list.1.name
                regex: '^xul'
                result: defer
            """)
        #expect(t.throttle(crash(["Modules": #"{"list":[{"name":"a"},{"name":"xul.dll"}]}"#])).rule == "second_module")
        #expect(t.throttle(crash(["Modules": #"{"list":[{"name":"xul.dll"}]}"#])).rule == "NO_MATCH")
        #expect(t.throttle(crash(["Modules": "not json"])).rule == "NO_MATCH")
        let parsed = CrashReport(annotations: ["Modules": .object(["list": .array([.null, .object(["name": .string("xul")])])])], payloadKind: "json")
        #expect(t.throttle(parsed).rule == "second_module")
        // A string inside the JSON is not parsed again.
        let nested = crash(["Modules": #"{"list":[0,"{\"name\":\"xul\"}"]}"#])
        #expect(t.throttle(nested).rule == "NO_MATCH")
    }

    @Test("BuildID age follows the injected clock")
    func buildIDClock() throws {
        let yaml = "rules: [{name: old, field: BuildID, buildid_older_than_days: 10, result: reject}]\ndefault: {result: accept, rule: fresh}"
        let early = try RuleThrottler(text: yaml, file: "t.yaml", now: { Date(timeIntervalSince1970: 1_699_185_600) }) // 2023-11-05 12:00
        let late = try RuleThrottler(text: yaml, file: "t.yaml", now: { Date(timeIntervalSince1970: 1_800_000_000) }) // 2027-01-15
        let report = crash(["BuildID": "20231101093000"])
        #expect(early.throttle(report) == ThrottleDecision(.accept, rule: "fresh"))
        #expect(late.throttle(report) == ThrottleDecision(.reject, rule: "old"))
        #expect(late.throttle(crash(["BuildID": "20230229000000"])).rule == "fresh") // no such day
    }

    @Test("continue goes on; the default decides when nothing else does")
    func continueAndDefault() throws {
        let t = try rules("""
            default: {result: defer, rule: LEFTOVER}
            rules:
              - {name: note, field: A, exists: true, result: continue}
              - {name: b, field: B, equals: "1", result: fakeaccept}
            """)
        #expect(t.throttle(crash(["A": "x", "B": "1"])) == ThrottleDecision(.fakeaccept, rule: "b"))
        #expect(t.throttle(crash(["A": "x"])) == ThrottleDecision(.defer, rule: "LEFTOVER"))
    }

    @Test("text and number comparisons, any_of")
    func comparisons() throws {
        let t = try rules("""
            rules:
              - name: either
                any_of:
                  - {field: BuildID, text: {lt: "2017"}}
                  - {field: Env, json_path: n, number: {gt: 1.5, le: 3}}
                result: accept
            """)
        #expect(t.throttle(crash(["BuildID": "20161231"])).rule == "either")
        #expect(t.throttle(crash(["BuildID": "2017"])).rule == "NO_MATCH")
        #expect(t.throttle(crash(["Env": #"{"n": 3}"#])).rule == "either")
        #expect(t.throttle(crash(["Env": #"{"n": 1.5}"#])).rule == "NO_MATCH")
    }

    @Test("rule files may be JSON")
    func jsonFile() throws {
        let t = try RuleThrottler(text: """
            {"rules": [
              {"name": "nightly", "field": "ReleaseChannel", "regex": "^nightly\\\\b", "result": "accept"},
              {"name": "split", "field": "ProductName", "one_of": ["Firefox"],
               "result": {"percent": 50, "then": "defer", "else": "reject"}}
            ], "default": {"result": "fakeaccept"}}
            """, file: "rules.json", random: FixedThrottleRandom(value: 0.25))
        #expect(t.throttle(crash(["ReleaseChannel": "nightly-cck"])) == ThrottleDecision(.accept, rule: "nightly"))
        #expect(t.throttle(crash(["ProductName": "Firefox"])) == ThrottleDecision(.defer, rule: "split"))
        #expect(t.throttle(crash([:])) == ThrottleDecision(.fakeaccept, rule: "NO_MATCH"))
    }

    @Test("one debug line per decision")
    func logsDecision() throws {
        let sink = CapturingLogSink()
        let telemetry = Telemetry(sink: sink, logLevel: .debug, statsd: nil)
        let t = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: FixedThrottleRandom(value: 0.5), now: { ThrottleFixtures.now },
                                  logger: telemetry.logger("breakwater.throttler"))
        _ = t.throttle(crash(["ProductName": "Firefox", "ReleaseChannel": "release"]))
        #expect(sink.lines.count == 1)
        #expect(sink.lines.first?.contains("Firefox: matched by is_firefox_desktop; returned REJECT") == true)
    }

    @Test("THROTTLER=rules selects the rule throttler and its file")
    func backends() throws {
        var config = CollectorConfiguration()
        config.throttler = "rules"
        config.throttleRules = ThrottleFixtures.acceptAll
        let throttler = try Backends.throttler(config, telemetry: .silent())
        #expect(throttler is RuleThrottler)
        #expect(throttler.throttle(crash([:])).rule == "accept_everything")
        config.throttleRules = "/nonexistent/rules.yaml"
        #expect(throws: ThrottleRuleError.self) { try Backends.throttler(config, telemetry: .silent()) }
    }

    // MARK: bad rule files

    struct BadFile: Sendable, CustomTestStringConvertible {
        let what: String
        let yaml: String
        /// The whole message: file, line, rule, problem.
        let message: String
        var testDescription: String { what }
    }

    static let badFiles: [BadFile] = [
        .init(what: "does not parse", yaml: "rules:\n  - name: a\n    equals: [x\n", message: "bad.yaml:4: does not parse as YAML or JSON: did not find expected ',' or ']'"),
        .init(what: "empty", yaml: "", message: "bad.yaml: is empty: expected a mapping with a `rules` list"),
        .init(what: "no rules list", yaml: "rule: []", message: "bad.yaml:1: unknown key 'rule' in the file"),
        .init(what: "rules not a list", yaml: "rules: {a: 1}", message: "bad.yaml:1: expected a `rules` list at the top level"),
        .init(what: "unknown condition", yaml: "rules:\n  - name: b2g\n    field: ProductName\n    equal: b2g\n    result: reject\n", message: "bad.yaml:4: rule 'b2g': unknown condition 'equal'"),
        .init(what: "unknown nested condition", yaml: "rules:\n  - name: x\n    all_of:\n      - {field: A, matches: b}\n    result: reject\n", message: "bad.yaml:4: rule 'x': unknown condition 'matches'"),
        .init(what: "unreachable rule", yaml: "rules:\n  - {name: accept_everything, always: true, result: accept}\n  - {name: has_comments, field: Comments, exists: true, result: reject}\n", message: "bad.yaml:3: rule 'has_comments': unreachable: rule 'accept_everything' before it decides every crash"),
        .init(what: "unreachable after an unconditional split", yaml: "rules:\n  - {name: half, always: true, result: {percent: 50, then: accept, else: reject}}\n  - {name: later, field: A, exists: true, result: reject}\n", message: "bad.yaml:3: rule 'later': unreachable: rule 'half' before it decides every crash"),
        .init(what: "no condition", yaml: "rules:\n  - {name: x, field: Comments, result: accept}\n", message: "bad.yaml:2: rule 'x': no condition: use one of always, exists, equals, one_of, prefix, regex, version, number, text, buildid_older_than_days, all_of, any_of, not"),
        .init(what: "two conditions", yaml: "rules:\n  - {name: x, field: A, equals: a, prefix: b, result: accept}\n", message: "bad.yaml:2: rule 'x': more than one condition (equals, prefix): combine them with all_of"),
        .init(what: "value test without a field", yaml: "rules:\n  - {name: x, equals: Firefox, result: accept}\n", message: "bad.yaml:2: rule 'x': condition 'equals' needs a field"),
        .init(what: "json_path without a field", yaml: "rules:\n  - {name: x, json_path: a.b, exists: true, result: accept}\n", message: "bad.yaml:2: rule 'x': json_path needs a field holding JSON"),
        .init(what: "bad regex", yaml: "rules:\n  - {name: x, field: A, regex: '(', result: accept}\n", message: "bad.yaml:2: rule 'x': regex '(' does not compile"),
        .init(what: "bad version", yaml: "rules:\n  - {name: x, field: Version, version: {gte: '52'}, result: accept}\n", message: "bad.yaml:2: rule 'x': unknown key 'gte' in a version comparison"),
        .init(what: "bad version bound", yaml: "rules:\n  - {name: x, field: Version, version: {ge: 'fifty'}, result: accept}\n", message: "bad.yaml:2: rule 'x': 'fifty' is not a version"),
        .init(what: "unknown result", yaml: "rules:\n  - {name: x, always: true, result: keep}\n", message: "bad.yaml:2: rule 'x': unknown result 'keep': use accept, defer, reject, fakeaccept or continue"),
        .init(what: "no result", yaml: "rules:\n  - {name: x, always: true}\n", message: "bad.yaml:2: rule 'x': has no result"),
        .init(what: "percent out of range", yaml: "rules:\n  - {name: x, always: true, result: {percent: 110, then: accept, else: reject}}\n", message: "bad.yaml:2: rule 'x': percent must be a number from 0 to 100"),
        .init(what: "split missing else", yaml: "rules:\n  - {name: x, always: true, result: {percent: 10, then: accept}}\n", message: "bad.yaml:2: rule 'x': a percentage result needs percent, then and else"),
        .init(what: "no name", yaml: "rules:\n  - {always: true, result: accept}\n", message: "bad.yaml:2: rule '#1': has no name"),
        .init(what: "invalid name", yaml: "rules:\n  - {name: has comments, always: true, result: accept}\n", message: "bad.yaml:2: rule '#1': invalid rule name 'has comments': use letters, digits and _"),
        .init(what: "duplicate name", yaml: "rules:\n  - {name: x, field: A, exists: true, result: accept}\n  - {name: x, field: B, exists: true, result: accept}\n", message: "bad.yaml:3: rule 'x': duplicate rule name"),
        .init(what: "duplicate key", yaml: "rules:\n  - {name: x, field: A, field: B, exists: true, result: accept}\n", message: "bad.yaml:2: rule 'x': duplicate key 'field'"),
        .init(what: "exists false", yaml: "rules:\n  - {name: x, field: A, exists: false, result: accept}\n", message: "bad.yaml:2: rule 'x': 'exists' only takes true (wrap it in not to negate)"),
        .init(what: "case_insensitive on a version", yaml: "rules:\n  - {name: x, field: V, version: {ge: '1'}, case_insensitive: true, result: accept}\n", message: "bad.yaml:2: rule 'x': case_insensitive applies only to equals, one_of, prefix and regex"),
        .init(what: "empty one_of", yaml: "rules:\n  - {name: x, field: A, one_of: [], result: accept}\n", message: "bad.yaml:2: rule 'x': 'one_of' expects a non-empty list of strings"),
        .init(what: "default continue", yaml: "default: {result: continue}\nrules: []\n", message: "bad.yaml:1: the default result must decide: accept, defer, reject or fakeaccept"),
    ]

    @Test("bad rule files are refused with file, line, rule and problem", arguments: badFiles)
    func badFile(_ bad: BadFile) {
        do {
            _ = try RuleThrottler(text: bad.yaml, file: "bad.yaml")
            Issue.record("loaded")
        } catch {
            #expect("\(error)" == bad.message)
        }
    }

    @Test("a missing file names the file")
    func missingFile() {
        #expect {
            try RuleThrottler(contentsOfFile: "/nonexistent/rules.yaml")
        } throws: { error in
            "\(error)".hasPrefix("/nonexistent/rules.yaml: cannot read the file")
        }
    }
}
