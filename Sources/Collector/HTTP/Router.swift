/// Maps method and path to a handler. Paths are bound at start-up from configuration.
public final class Router: Sendable {
    public typealias Handler = @Sendable (CollectorRequest) -> CollectorResponse

    public struct Route: Sendable {
        let method: String
        /// A `*` segment matches any one non-empty segment (the Sentry project id in `/api/*/store/`).
        let path: String
        /// Answered on the event loop: cheap, no I/O, and must stay up when workers are busy.
        public let inline: Bool
        /// The `endpoint` tag of a crash route (nil for operations endpoints).
        public let endpoint: String?
        /// What the HTTP front answers, in this route's protocol, when it is too busy or the body
        /// is over the limit before any worker sees the request.
        public let overload: CollectorResponse
        public let tooLarge: CollectorResponse
        let handler: Handler
    }

    private let routes: [Route]

    public init(routes: [Route]) { self.routes = routes }

    public static func route(_ method: String, _ path: String, inline: Bool = false, endpoint: String? = nil,
                             overload: CollectorResponse = .retryLater, tooLarge: CollectorResponse = .tooLarge,
                             _ handler: @escaping Handler) -> Route {
        Route(method: method, path: path, inline: inline, endpoint: endpoint, overload: overload, tooLarge: tooLarge, handler: handler)
    }

    /// The route for a path, if any (any method).
    public func route(for method: String, path: String) -> Route? {
        routes.first { $0.method == method && matches($0, path) } ?? routes.first { matches($0, path) }
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        guard let route = route(for: request.method, path: request.path) else { return .text(404, "Not Found") }
        guard route.method == request.method else { return .text(405, "Method Not Allowed", headers: [("Allow", route.method)]) }
        return route.handler(request)
    }

    /// Every bound path, for `check-config`.
    public var boundPaths: [String] { routes.map { "\($0.method) \($0.path)" } }

    private func matches(_ route: Route, _ path: String) -> Bool {
        guard route.path.contains("*") else { return path == route.path }
        let want = route.path.split(separator: "/", omittingEmptySubsequences: false)
        let got = path.split(separator: "/", omittingEmptySubsequences: false)
        return want.count == got.count && zip(want, got).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
    }
}
