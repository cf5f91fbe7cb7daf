/// Antenna's environment variables, honoured when Breakwater's own name is unset, so an Antenna
/// deployment's environment works unchanged (docs/antenna.md has the full table). Each becomes
/// the Breakwater variable it stands for; an Antenna class Breakwater does not know is an error
/// naming the variable.
enum AntennaNames {
    struct Mapping: Sendable {
        let antenna: String
        /// The Breakwater variables it sets, from the Antenna value; nil when the value is unknown.
        let translate: @Sendable (String) -> [String: String]?
        /// What a valid value looks like, for the error message.
        let expected: String
    }

    static func same(_ name: String) -> @Sendable (String) -> [String: String]? { { [name: $0] } }

    static func classes(_ name: String, _ table: [String: String]) -> @Sendable (String) -> [String: String]? {
        { table[$0].map { [name: $0] } }
    }

    static let storageClasses = [
        "antenna.ext.gcs.crashstorage.GcsCrashStorage": "gcs",
        "antenna.ext.fs.crashstorage.FSCrashStorage": "fs",
        "antenna.ext.crashstorage_base.NoOpCrashStorage": "null",
    ]
    static let publishClasses = [
        "antenna.ext.pubsub.crashpublish.PubSubCrashPublish": "pubsub",
        "antenna.ext.crashpublish_base.NoOpCrashPublish": "null",
    ]
    static let throttlerRules = [
        "antenna.throttler.MOZILLA_RULES": ["THROTTLER": "rules", "THROTTLE_RULES": "config/throttle/mozilla.yaml"],
        "antenna.throttler.ACCEPT_ALL": ["THROTTLER": "rules", "THROTTLE_RULES": "config/throttle/accept-all.yaml"],
    ]
    /// Antenna's own default for `BREAKPAD_THROTTLER_RULES`.
    static let defaultThrottlerRules = "antenna.throttler.MOZILLA_RULES"

    static let mappings: [Mapping] = [
        Mapping(antenna: "CRASHMOVER_CRASHSTORAGE_CLASS", translate: classes("CRASHSTORAGE", storageClasses),
                expected: storageClasses.keys.sorted().joined(separator: ", ")),
        Mapping(antenna: "CRASHMOVER_CRASHSTORAGE_BUCKET_NAME", translate: same("CRASHSTORAGE_GCS_BUCKET"), expected: ""),
        Mapping(antenna: "CRASHMOVER_CRASHSTORAGE_FS_ROOT", translate: same("CRASHSTORAGE_FS_ROOT"), expected: ""),
        Mapping(antenna: "CRASHMOVER_CRASHPUBLISH_CLASS", translate: classes("CRASHQUEUE", publishClasses),
                expected: publishClasses.keys.sorted().joined(separator: ", ")),
        Mapping(antenna: "CRASHMOVER_CRASHPUBLISH_PROJECT_ID", translate: same("PUBSUB_PROJECT_ID"), expected: ""),
        Mapping(antenna: "CRASHMOVER_CRASHPUBLISH_TOPIC_NAME", translate: same("PUBSUB_TOPIC"), expected: ""),
        Mapping(antenna: "BREAKPAD_THROTTLER_RULES", translate: { throttlerRules[$0] },
                expected: throttlerRules.keys.sorted().joined(separator: ", ")),
        Mapping(antenna: "BREAKPAD_STAGE_SUBMITTER_BEARER_TOKEN", translate: same("SUBMITTER_TOKEN"), expected: ""),
        Mapping(antenna: "LOGGING_LEVEL", translate: same("LOG_LEVEL"), expected: ""),
    ]

    /// The environment with Antenna's variables turned into Breakwater's where Breakwater's are
    /// unset (Breakwater's name wins), and for each variable set that way, the Antenna name.
    /// An environment written for Antenna (one of the `CRASHMOVER_*` or `BREAKPAD_*` variables
    /// above set) gets Antenna's default throttle rules, Mozilla's, when it names none: with the
    /// repository's config file, the null throttler, it would silently start keeping every crash.
    /// A config file of the operator's own (`BREAKWATER_CONFIG`) says what it wants, and wins.
    static func apply(to environment: [String: String]) throws -> (environment: [String: String], sources: [String: String]) {
        var env = environment
        var sources: [String: String] = [:]
        var antennaEnvironment = environment
        if antennaEnvironment["BREAKPAD_THROTTLER_RULES"] == nil, environment["BREAKWATER_CONFIG"] == nil,
           mappings.contains(where: { ($0.antenna.hasPrefix("CRASHMOVER_") || $0.antenna.hasPrefix("BREAKPAD_")) && environment[$0.antenna] != nil }) {
            antennaEnvironment["BREAKPAD_THROTTLER_RULES"] = defaultThrottlerRules
        }
        for mapping in mappings {
            guard let value = antennaEnvironment[mapping.antenna] else { continue }
            guard let translated = mapping.translate(value) else {
                throw CollectorConfiguration.ConfigurationError.invalid(name: mapping.antenna, value: value, expected: mapping.expected)
            }
            // A translation sets its variables together or not at all (the throttler and its rules).
            guard translated.keys.allSatisfy({ environment[$0] == nil }) else { continue }
            for (name, v) in translated {
                env[name] = v
                sources[name] = environment[mapping.antenna] == nil ? mapping.antenna + "'s default" : mapping.antenna
            }
        }
        return (env, sources)
    }
}
