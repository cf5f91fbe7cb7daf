/// A rule file refused at load: names the file (and line when known), the rule and the problem,
/// e.g. `config/throttle/mozilla.yaml:12: rule 'b2g': unknown condition 'equal'`.
public struct ThrottleRuleError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int?
    /// The rule's name, or `#<position>` when it has none; nil for file-level problems.
    public let rule: String?
    public let problem: String

    public init(file: String, line: Int? = nil, rule: String? = nil, problem: String) {
        self.file = file
        self.line = line
        self.rule = rule
        self.problem = problem
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let rule { s += ": rule '\(rule)'" }
        return s + ": " + problem
    }
}
