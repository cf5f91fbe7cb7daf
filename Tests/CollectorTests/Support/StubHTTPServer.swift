import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP server on loopback answering each request with `handler`, for the services that
/// cannot run here: Google's token endpoint and the metadata server, and a storage server that
/// answers some requests late (`delay`).
final class StubHTTPServer: Sendable {
    struct Request: Sendable {
        let method: String
        let uri: String
        let headers: HTTPHeaders
        let body: String
    }

    typealias Handler = @Sendable (Request) -> (status: Int, body: String)

    let port: Int
    private let channel: Channel
    private let received = NIOLockedValueBox<[Request]>([])

    init(delay: @escaping @Sendable (Request) -> TimeAmount = { _ in .zero }, _ handler: @escaping Handler) throws {
        let received = self.received
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    try child.pipeline.syncOperations.addHandler(Responder(handler: handler, delay: delay, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    /// Every request so far.
    var requests: [Request] { received.withLockedValue { $0 } }

    func stop() { try? channel.close().wait() }

    // @unchecked: NIO calls it on its channel's event loop only.
    private final class Responder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let handler: Handler
        let delay: @Sendable (Request) -> TimeAmount
        let received: NIOLockedValueBox<[Request]>
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(handler: @escaping Handler, delay: @escaping @Sendable (Request) -> TimeAmount, received: NIOLockedValueBox<[Request]>) {
            self.handler = handler
            self.delay = delay
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h; body.clear()
            case .body(var b): body.writeBuffer(&b)
            case .end:
                guard let head else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers, body: String(buffer: body))
                received.withLockedValue { $0.append(request) }
                let (status, text) = handler(request)
                // `Connection: close`: the client closes once it has the answer.
                let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(text.utf8.count)),
                                           ("Connection", "close")])
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: delay(request)) { [self] in
                    let context = bound.value
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}
