/// One rule of a rule file: when `condition` matches, `outcome` says what happens.
struct ThrottleRule: Sendable {
    /// What a matching rule does: decide, or let the next rules look (`continue`).
    enum Action: Sendable, Equatable {
        case decide(ThrottleResult)
        case `continue`

        var isTerminal: Bool { self != .continue }
    }

    enum Outcome: Sendable {
        case fixed(Action)
        /// `then` for `percent`% of matching crashes, `otherwise` for the rest. As in Antenna,
        /// `then` wins when a draw from [0, 100) is ≤ `percent`.
        case split(percent: Double, then: Action, otherwise: Action)

        func resolve(_ random: ThrottleRandomSource) -> Action {
            switch self {
            case .fixed(let action): return action
            case let .split(percent, then, otherwise): return random.next() * 100 <= percent ? then : otherwise
            }
        }

        /// Every crash reaching this outcome gets a decision.
        var alwaysDecides: Bool {
            switch self {
            case .fixed(let action): return action.isTerminal
            case let .split(_, then, otherwise): return then.isTerminal && otherwise.isTerminal
            }
        }
    }

    let name: String
    let condition: ThrottleCondition
    let outcome: Outcome
}
