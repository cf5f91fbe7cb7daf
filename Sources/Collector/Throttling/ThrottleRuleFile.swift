import Foundation
import Yams

/// A loaded rule file: the rules in order, and the decision when none decides.
struct ThrottleRuleSet: Sendable {
    let rules: [ThrottleRule]
    let fallback: ThrottleDecision
}

/// Reads a rule file (YAML, or JSON, which YAML reads too; format in docs/throttling.md).
/// Works on Yams nodes rather than decoded values so scalars keep their exact spelling
/// (`0.10`, `no` stay strings) and errors can give line numbers.
enum ThrottleRuleFile {
    static func load(contentsOfFile path: String) throws -> ThrottleRuleSet {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ThrottleRuleError(file: path, problem: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    static func parse(_ text: String, file: String) throws -> ThrottleRuleSet {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            switch error {
            case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
                throw ThrottleRuleError(file: file, line: mark.line, problem: "does not parse as YAML or JSON: \(problem)")
            default:
                throw ThrottleRuleError(file: file, problem: "does not parse as YAML or JSON: \(error)")
            }
        }
        return try Reader(file: file).ruleSet(root)
    }

    static let conditionKeys = ["always", "exists", "equals", "one_of", "prefix", "regex", "version", "number", "text",
                                "buildid_older_than_days", "all_of", "any_of", "not"]
    static let modifierKeys = ["field", "json_path", "case_insensitive"]
    static let caseInsensitiveKeys: Set = ["equals", "one_of", "prefix", "regex"]
    /// Rule names end up in statsd tags and response bodies: Antenna's alphabet.
    static let ruleNamePattern = try! NSRegularExpression(pattern: "^[A-Za-z0-9_]+$")

    private struct Reader {
        let file: String

        func fail(_ node: Node?, _ rule: String?, _ problem: String) -> ThrottleRuleError {
            ThrottleRuleError(file: file, line: node?.mark?.line, rule: rule, problem: problem)
        }

        func ruleSet(_ root: Node?) throws -> ThrottleRuleSet {
            guard let root else { throw fail(nil, nil, "is empty: expected a mapping with a `rules` list") }
            let top = try mapping(root, nil, allowed: ["rules", "default"], context: "the file")
            guard let rulesNode = top["rules"], case .sequence(let list) = rulesNode else {
                throw fail(root, nil, "expected a `rules` list at the top level")
            }
            var rules: [ThrottleRule] = []
            var names: Set<String> = []
            for (i, node) in list.enumerated() {
                let rule = try self.rule(node, position: i + 1)
                guard names.insert(rule.name).inserted else { throw fail(node, rule.name, "duplicate rule name") }
                // A rule after one that decides every crash could never run: surely a mistake.
                if let previous = rules.last, previous.condition.isAlways, previous.outcome.alwaysDecides {
                    throw fail(node, rule.name, "unreachable: rule '\(previous.name)' before it decides every crash")
                }
                rules.append(rule)
            }
            return ThrottleRuleSet(rules: rules, fallback: try fallback(top["default"]))
        }

        /// `default: {result: reject, rule: NO_MATCH}`, both optional.
        func fallback(_ node: Node?) throws -> ThrottleDecision {
            var decision = ThrottleDecision(.reject, rule: "NO_MATCH")
            guard let node else { return decision }
            let map = try mapping(node, nil, allowed: ["result", "rule"], context: "default")
            if let resultNode = map["result"] {
                guard case .decide(let result) = try action(resultNode, nil) else {
                    throw fail(resultNode, nil, "the default result must decide: accept, defer, reject or fakeaccept")
                }
                decision.result = result
            }
            if let ruleNode = map["rule"] { decision.rule = try ruleName(ruleNode, nil) }
            return decision
        }

        func rule(_ node: Node, position: Int) throws -> ThrottleRule {
            let unnamed = "#\(position)"
            // Key errors name the rule as written, before its name is checked.
            let written = node.mapping?["name"]?.scalar?.string ?? unnamed
            let map = try mapping(node, written, allowed: ["name", "result"] + conditionKeys + modifierKeys, context: "a rule")
            guard let nameNode = map["name"] else { throw fail(node, unnamed, "has no name") }
            let name = try ruleName(nameNode, unnamed)
            guard let resultNode = map["result"] else { throw fail(node, name, "has no result") }
            return ThrottleRule(name: name, condition: try condition(map, node, name, scope: .crash),
                                outcome: try outcome(resultNode, name))
        }

        func ruleName(_ node: Node, _ rule: String?) throws -> String {
            let name = try string(node, rule, "a rule name")
            let range = NSRange(name.startIndex..., in: name)
            guard ThrottleRuleFile.ruleNamePattern.firstMatch(in: name, range: range) != nil else {
                throw fail(node, rule, "invalid rule name '\(name)': use letters, digits and _")
            }
            return name
        }

        /// `accept`, or `{percent: 10, then: accept, else: reject}`.
        func outcome(_ node: Node, _ rule: String) throws -> ThrottleRule.Outcome {
            guard case .mapping = node else { return .fixed(try action(node, rule)) }
            let map = try mapping(node, rule, allowed: ["percent", "then", "else"], context: "a percentage result")
            guard let p = map["percent"], let then = map["then"], let otherwise = map["else"] else {
                throw fail(node, rule, "a percentage result needs percent, then and else")
            }
            guard let percent = Double(try string(p, rule, "a percentage")), (0...100).contains(percent) else {
                throw fail(p, rule, "percent must be a number from 0 to 100")
            }
            return .split(percent: percent, then: try action(then, rule), otherwise: try action(otherwise, rule))
        }

        func action(_ node: Node, _ rule: String?) throws -> ThrottleRule.Action {
            let word = try string(node, rule, "a result").lowercased()
            if word == "continue" { return .continue }
            guard let result = ThrottleResult(rawValue: word) else {
                throw fail(node, rule, "unknown result '\(word)': use accept, defer, reject, fakeaccept or continue")
            }
            return .decide(result)
        }

        /// What value tests look at where a condition sits.
        enum Scope {
            case crash
            case annotation
            /// A value inside an annotation's JSON (reached by `json_path`).
            case json
        }

        /// One condition mapping: optional `field`, `json_path`, `case_insensitive`, and exactly one
        /// condition key. `scope` is set by enclosing conditions' `field` and `json_path`.
        func condition(_ map: [String: Node], _ node: Node, _ rule: String, scope outer: Scope) throws -> ThrottleCondition {
            var scope = outer
            var fieldName: String?
            if let f = map["field"] {
                let name = try string(f, rule, "a field name")
                fieldName = name == "*" ? nil : name
                scope = fieldName == nil ? .crash : .annotation
            }
            var path: (keys: [String], parse: Bool)?
            if let p = map["json_path"] {
                guard scope != .crash else { throw fail(p, rule, "json_path needs a field holding JSON") }
                let components = try string(p, rule, "a JSON path").split(separator: ".", omittingEmptySubsequences: false)
                guard !components.contains(where: \.isEmpty) else { throw fail(p, rule, "json_path must be keys separated by dots") }
                // Only an annotation's text is parsed; a string inside JSON stays a string.
                path = (components.map(String.init), scope == .annotation)
                scope = .json
            }
            let present = ThrottleRuleFile.conditionKeys.filter { map[$0] != nil }
            guard present.count == 1, let key = present.first, let arg = map[key] else {
                if present.isEmpty {
                    throw fail(node, rule, "no condition: use one of \(ThrottleRuleFile.conditionKeys.joined(separator: ", "))")
                }
                throw fail(node, rule, "more than one condition (\(present.joined(separator: ", "))): combine them with all_of")
            }
            var caseInsensitive = false
            if let ci = map["case_insensitive"] {
                guard ThrottleRuleFile.caseInsensitiveKeys.contains(key) else {
                    throw fail(ci, rule, "case_insensitive applies only to equals, one_of, prefix and regex")
                }
                caseInsensitive = try bool(ci, rule, "case_insensitive")
            }

            var result = try test(key, arg, rule, scope: scope, caseInsensitive: caseInsensitive)
            if let path { result = .jsonPath(path.keys, parse: path.parse, result) }
            if let fieldName { result = .field(fieldName, result) }
            return result
        }

        /// The condition named `key` with its argument.
        func test(_ key: String, _ arg: Node, _ rule: String, scope: Scope, caseInsensitive ci: Bool) throws -> ThrottleCondition {
            let needsValue = !["always", "all_of", "any_of", "not"].contains(key)
            guard scope != .crash || !needsValue else { throw fail(arg, rule, "condition '\(key)' needs a field") }
            func lower(_ s: String) -> String { ci ? s.lowercased() : s }
            switch key {
            case "always", "exists":
                guard try bool(arg, rule, key) else { throw fail(arg, rule, "'\(key)' only takes true (wrap it in not to negate)") }
                return key == "always" ? .always : .exists
            case "equals":
                return .equals(lower(try string(arg, rule, "a string for equals")), caseInsensitive: ci)
            case "one_of":
                return .oneOf(Set(try strings(arg, rule, key).map(lower)), caseInsensitive: ci)
            case "prefix":
                let prefixes = arg.sequence == nil ? [try string(arg, rule, "a prefix")] : try strings(arg, rule, key)
                return .prefix(prefixes.map(lower), caseInsensitive: ci)
            case "regex":
                let pattern = try string(arg, rule, "a regular expression")
                do {
                    return .regex(CompiledRegex(regex: try NSRegularExpression(pattern: pattern, options: ci ? [.caseInsensitive] : [])))
                } catch {
                    throw fail(arg, rule, "regex '\(pattern)' does not compile")
                }
            case "version", "number", "text":
                return .compare(try comparison(arg, rule, kind: ThrottleComparison.Kind(rawValue: key)!))
            case "buildid_older_than_days":
                guard let days = Int(try string(arg, rule, "a number of days")), days >= 0 else {
                    throw fail(arg, rule, "buildid_older_than_days must be a whole number of days")
                }
                return .buildIDOlderThan(days: days)
            case "all_of", "any_of":
                guard case .sequence(let items) = arg, !items.isEmpty else {
                    throw fail(arg, rule, "'\(key)' expects a non-empty list of conditions")
                }
                let parts = try items.map { item in
                    try condition(try mapping(item, rule, allowed: nil, context: "a condition"), item, rule, scope: scope)
                }
                return key == "all_of" ? .allOf(parts) : .anyOf(parts)
            default: // "not"
                return .not(try condition(try mapping(arg, rule, allowed: nil, context: "a condition"), arg, rule, scope: scope))
            }
        }

        /// `{ge: "52", lt: "60"}`: every bound must hold.
        func comparison(_ node: Node, _ rule: String, kind: ThrottleComparison.Kind) throws -> ThrottleComparison {
            let allowed = ThrottleComparison.Operator.allCases.map(\.rawValue)
            let map = try mapping(node, rule, allowed: allowed, context: "a \(kind.rawValue) comparison")
            guard !map.isEmpty else { throw fail(node, rule, "'\(kind.rawValue)' needs at least one of \(allowed.joined(separator: ", "))") }
            let bounds = try ThrottleComparison.Operator.allCases.compactMap { op -> (ThrottleComparison.Operator, ThrottleComparison.Bound)? in
                guard let b = map[op.rawValue] else { return nil }
                let text = try string(b, rule, "a bound")
                guard let bound = ThrottleComparison.bound(text, kind: kind) else {
                    throw fail(b, rule, "'\(text)' is not a \(kind.rawValue)")
                }
                return (op, bound)
            }
            return ThrottleComparison(kind: kind, bounds: bounds)
        }

        /// A mapping's entries by key, refusing duplicates and, when `allowed` is given, other keys.
        /// Without `allowed` (nested conditions) the condition and modifier keys are allowed.
        func mapping(_ node: Node, _ rule: String?, allowed: [String]?, context: String) throws -> [String: Node] {
            guard case .mapping(let pairs) = node else { throw fail(node, rule, "expected a mapping for \(context)") }
            let keys = allowed ?? (ThrottleRuleFile.conditionKeys + ThrottleRuleFile.modifierKeys)
            var map: [String: Node] = [:]
            for (k, v) in pairs {
                let key = try string(k, rule, "a key")
                guard keys.contains(key) else {
                    // Rules and conditions take condition keys: an unknown key there is an unknown condition.
                    let isCondition = keys.contains("field")
                    throw fail(k, rule, isCondition ? "unknown condition '\(key)'" : "unknown key '\(key)' in \(context)")
                }
                guard map.updateValue(v, forKey: key) == nil else { throw fail(k, rule, "duplicate key '\(key)'") }
            }
            return map
        }

        func string(_ node: Node, _ rule: String?, _ what: String) throws -> String {
            guard case .scalar(let scalar) = node else { throw fail(node, rule, "expected \(what)") }
            return scalar.string
        }

        func strings(_ node: Node, _ rule: String, _ key: String) throws -> [String] {
            guard case .sequence(let items) = node, !items.isEmpty else {
                throw fail(node, rule, "'\(key)' expects a non-empty list of strings")
            }
            return try items.map { try string($0, rule, "a string in \(key)") }
        }

        func bool(_ node: Node, _ rule: String, _ key: String) throws -> Bool {
            switch try string(node, rule, "true or false for \(key)") {
            case "true": return true
            case "false": return false
            default: throw fail(node, rule, "'\(key)' expects true or false")
            }
        }
    }
}
