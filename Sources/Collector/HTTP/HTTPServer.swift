import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Telemetry

/// The HTTP/1.1 front on SwiftNIO: keep-alive, header and body limits, read timeouts.
/// Complete requests go to the worker pool through `RequestCollector`.
public final class HTTPServer: Sendable {
    private let group: EventLoopGroup
    private let collectorContext: RequestCollector.Context
    private let readTimeout: TimeAmount
    private let channel = NIOLockedValueBox<Channel?>(nil)

    init(group: EventLoopGroup, context: RequestCollector.Context, readTimeout: TimeAmount) {
        self.group = group
        self.collectorContext = context
        self.readTimeout = readTimeout
    }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    public func start(host: String, port: Int) async throws -> Int {
        let context = collectorContext, readTimeout = self.readTimeout
        let decoderLimits = {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderListSize = 2 * context.maxHeaderBytes
            limits.maxHeaderFieldSize = 2 * context.maxHeaderBytes
            return limits
        }()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // TCP level: at the socket level this number is SO_DEBUG, which non-root users may not set.
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Parse errors are answered by `RequestCollector`, with a reason and an audit line.
                    // The decoder's own bound on a head is twice ours: a head between the two gets
                    // our 431 with its route known; one past it, the decoder's (also a 431).
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withErrorHandling: false, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
                    try channel.pipeline.syncOperations.addHandlers(
                        IdleStateHandler(readTimeout: readTimeout),
                        RequestCollector(context: context))
                }
            }
        let bound = try await bootstrap.bind(host: host, port: port).get()
        channel.withLockedValue { $0 = bound }
        return bound.localAddress?.port ?? port
    }

    /// Stops accepting new connections; open ones finish their request and close.
    public func stopAccepting() async {
        collectorContext.draining.withLockedValue { $0 = true }
        if let ch = channel.withLockedValue({ $0 }) { try? await ch.close() }
    }
}
