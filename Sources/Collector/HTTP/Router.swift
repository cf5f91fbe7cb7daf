/// Maps method and path to a handler. Paths are bound at start-up from configuration.
public final class Router: Sendable {
    public typealias Handler = @Sendable (CollectorRequest) -> CollectorResponse
    /// Answers through the callback, once, from any thread.
    public typealias DeferredHandler = @Sendable (CollectorRequest, @escaping @Sendable (CollectorResponse) -> Void) -> Void

    /// Where a route's answer is computed.
    public enum Execution: Sendable {
        /// On the worker pool (crash endpoints).
        case worker(Handler)
        /// On the event loop: cheap, no I/O, and must stay up when workers are busy.
        case inline(Handler)
        /// Off both, by the handler's own means (the heartbeat's queue), never waiting for a worker.
        case deferred(DeferredHandler)
    }

    public struct Route: Sendable {
        let method: String
        /// A `*` segment matches any one non-empty segment (the Sentry project id in `/api/*/store/`).
        let path: String
        public let execution: Execution
        /// The `endpoint` tag of a crash route (nil for operations endpoints).
        public let endpoint: String?
        /// What the HTTP front answers, in this route's protocol, when it is too busy or the body
        /// is over the limit before any worker sees the request.
        public let overload: CollectorResponse
        public let tooLarge: CollectorResponse
    }

    private let routes: [Route]

    public init(routes: [Route]) { self.routes = routes }

    public static func route(_ method: String, _ path: String, inline: Bool = false, endpoint: String? = nil,
                             overload: CollectorResponse = .retryLater, tooLarge: CollectorResponse = .tooLarge,
                             _ handler: @escaping Handler) -> Route {
        Route(method: method, path: path, execution: inline ? .inline(handler) : .worker(handler), endpoint: endpoint,
              overload: overload, tooLarge: tooLarge)
    }

    public static func route(_ method: String, _ path: String, deferred: @escaping DeferredHandler) -> Route {
        Route(method: method, path: path, execution: .deferred(deferred), endpoint: nil, overload: .retryLater, tooLarge: .tooLarge)
    }

    /// The route for a path, if any (any method).
    public func route(for method: String, path: String) -> Route? {
        routes.first { $0.method == method && matches($0, path) } ?? routes.first { matches($0, path) }
    }

    /// The route of `request`, or the answer when there is none (404) or the method is wrong (405).
    public func resolve(_ request: CollectorRequest) -> Result<Route, Unrouted> {
        guard let route = route(for: request.method, path: request.path) else { return .failure(Unrouted(.text(404, "Not Found"))) }
        guard route.method == request.method else {
            return .failure(Unrouted(.text(405, "Method Not Allowed", headers: [("Allow", route.method)])))
        }
        return .success(route)
    }

    public struct Unrouted: Error {
        public let response: CollectorResponse
        init(_ response: CollectorResponse) { self.response = response }
    }

    /// Every bound path, for `check-config`.
    public var boundPaths: [String] { routes.map { "\($0.method) \($0.path)" } }

    private func matches(_ route: Route, _ path: String) -> Bool {
        // A byte search: `contains("*")` resolved to Foundation's, through CFString, per route per request.
        guard route.path.utf8.contains(UInt8(ascii: "*")) else { return path == route.path }
        let want = route.path.split(separator: "/", omittingEmptySubsequences: false)
        let got = path.split(separator: "/", omittingEmptySubsequences: false)
        return want.count == got.count && zip(want, got).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
    }
}
