/// Maps method and path to a handler. Paths are bound at start-up from configuration.
public final class Router: Sendable {
    public typealias Handler = @Sendable (CollectorRequest) -> CollectorResponse

    public struct Route: Sendable {
        let method: String
        let path: String
        /// Matches every path under `path` when true (the Sentry API prefix).
        let isPrefix: Bool
        /// Answered on the event loop: cheap, no I/O, and must stay up when workers are busy.
        public let inline: Bool
        /// The `endpoint` tag of a crash route (nil for operations endpoints).
        public let endpoint: String?
        let handler: Handler
    }

    private let routes: [Route]

    public init(routes: [Route]) { self.routes = routes }

    public static func route(_ method: String, _ path: String, prefix: Bool = false, inline: Bool = false,
                             endpoint: String? = nil, _ handler: @escaping Handler) -> Route {
        Route(method: method, path: path, isPrefix: prefix, inline: inline, endpoint: endpoint, handler: handler)
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
    public var boundPaths: [String] { routes.map { "\($0.method) \($0.path)\($0.isPrefix ? "…" : "")" } }

    private func matches(_ route: Route, _ path: String) -> Bool {
        route.isPrefix ? path.hasPrefix(route.path) : path == route.path
    }
}
