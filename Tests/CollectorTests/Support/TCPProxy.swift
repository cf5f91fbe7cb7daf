import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP proxy on a loopback port in front of a server. Tests switch it off to make the server
/// unreachable (moto keeps its objects in memory, so it cannot be restarted) and on again on the
/// same port. It also records the HTTP request lines passing through, to check write order, and their
/// `Authorization` headers.
// @unchecked: `port` is written only by start(), which tests call before sharing the proxy; the
// rest is behind `lock`.
final class TCPProxy: @unchecked Sendable {
    private(set) var port = 0
    private let upstreamHost: String
    private let upstreamPort: Int
    private let lock = NIOLock()
    private var listener: Channel?
    private var connections: [ObjectIdentifier: Channel] = [:]
    private var lines: [String] = []
    private var authorizationValues: [String] = []

    private let recording: Bool

    /// - Parameter recordRequestLines: whether to keep the request lines passing through. Off for
    ///   heavy traffic: finding them decodes every byte as text, which in a debug build is slow
    ///   enough to make 1 MiB uploads time out.
    init(upstreamHost: String, upstreamPort: Int, recordRequestLines: Bool = true) throws {
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        recording = recordRequestLines
        try start()
    }

    /// `PUT /bucket/key HTTP/1.1` … in the order they went through.
    var requestLines: [String] { lock.withLock { lines } }

    /// The `Authorization` header values that went through, in order (Google bearer tokens).
    var authorizations: [String] { lock.withLock { authorizationValues } }

    /// Listens again (on the same port after the first start).
    func start() throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in self.connect(inbound) }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
        port = channel.localAddress!.port!
        lock.withLock { listener = channel }
    }

    /// Stops listening and cuts every open connection: the server is now unreachable.
    func stop() throws {
        let (listening, open) = lock.withLock { () -> (Channel?, [Channel]) in
            defer { listener = nil; connections = [:] }
            return (listener, Array(connections.values))
        }
        try listening?.close().wait()
        for channel in open { try? channel.close().wait() }
    }

    /// Opens the upstream connection for a client connection and relays both ways.
    private func connect(_ inbound: Channel) -> EventLoopFuture<Void> {
        let record: (@Sendable (ByteBuffer) -> Void)? = recording ? { @Sendable bytes in self.record(bytes) } : nil
        return ClientBootstrap(group: inbound.eventLoop)
            .connect(host: upstreamHost, port: upstreamPort)
            .flatMapThrowing { (outbound: Channel) -> Void in
                self.track(inbound)
                self.track(outbound)
                // Both channels share one event loop, on which this runs.
                try inbound.pipeline.syncOperations.addHandler(Relay(peer: outbound, record: record))
                try outbound.pipeline.syncOperations.addHandler(Relay(peer: inbound, record: nil))
                // The proxy stopped while the upstream connected: stop() did not see this pair, and a
                // single-threaded server (the GCS emulator) would wait on it for ever.
                if !self.isListening {
                    inbound.close(promise: nil)
                    outbound.close(promise: nil)
                }
            }
    }

    private var isListening: Bool { lock.withLock { listener != nil } }

    private func track(_ channel: Channel) {
        lock.withLock { connections[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { _ in self.lock.withLock { _ = self.connections.removeValue(forKey: ObjectIdentifier(channel)) } }
    }

    private func record(_ bytes: ByteBuffer) {
        let text = String(decoding: bytes.readableBytesView, as: UTF8.self)
        let found = text.split(separator: "\r\n").filter { line in
            ["GET /", "PUT /", "DELETE /", "HEAD /", "POST /"].contains { line.hasPrefix($0) } && line.hasSuffix(" HTTP/1.1")
        }
        let authorizations = text.split(separator: "\r\n").filter { $0.lowercased().hasPrefix("authorization:") }
            .map { $0.dropFirst("authorization:".count).trimmingCharacters(in: .whitespaces) }
        lock.withLock {
            lines += found.map(String.init)
            authorizationValues += authorizations
        }
    }

    /// Copies what one side reads to the other side; closing one side closes the other.
    // @unchecked: its fields are immutable; NIO calls it on its channel's event loop only.
    private final class Relay: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let peer: Channel
        let record: (@Sendable (ByteBuffer) -> Void)?

        init(peer: Channel, record: (@Sendable (ByteBuffer) -> Void)?) {
            self.peer = peer
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            record?(bytes)
            peer.writeAndFlush(bytes, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
