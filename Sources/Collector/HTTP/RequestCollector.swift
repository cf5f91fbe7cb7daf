import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Telemetry

/// The per-connection HTTP state machine: collects one request (head and body, within the size,
/// memory and time limits), hands it to the worker pool, and writes the answer back on the event
/// loop. It never runs pipeline work itself.
final class RequestCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Context: Sendable {
        let router: Router
        let pool: WorkerPool
        let inflight: InflightBytes
        let telemetry: Telemetry
        let maxRequestBytes: Int
        let maxHeaderBytes: Int
        let requestTimeout: TimeAmount
        let draining: NIOLockedValueBox<Bool>
        let active: ActiveRequests
    }

    private enum State {
        case idle
        case receiving(head: HTTPRequestHead, body: ByteBuffer, reserved: Int)
        /// A response is on its way (a worker is running); further input is ignored.
        case responding
        /// The last response is written and the connection closes: a refusal, or `Connection:
        /// close`. A client still sending makes the decoder fail; that is not a new error.
        case closing
    }

    private let context: Context
    private var state = State.idle
    /// When the current phase, waiting for a head or receiving a body, must end: a head must
    /// arrive whole within the request timeout (a client trickling header bytes, slowloris, never
    /// looks idle to the read timeout), and so must a body. Nil while a response is on its way.
    private var due: NIODeadline?
    /// The one timer armed for `due`, if any. Each phase moves `due` later and leaves the timer
    /// alone; a timer that fires before `due` arms itself again for it. (Cancelling and scheduling a
    /// task at each phase cost every keep-alive request two of each.)
    private var timer: Scheduled<Void>?
    /// Whether this connection's current request is counted in `active`.
    private var counted = false

    init(context: Context) { self.context = context }

    func handlerAdded(context ctx: ChannelHandlerContext) { startPhase(ctx) }

    /// A head or a body starts now: it must be whole within the request timeout.
    private func startPhase(_ ctx: ChannelHandlerContext) {
        let due = NIODeadline.now() + context.requestTimeout
        self.due = due
        if timer == nil { arm(at: due, ctx) }
    }

    private func arm(at deadline: NIODeadline, _ ctx: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, ctx), eventLoop: ctx.eventLoop)
        timer = ctx.eventLoop.scheduleTask(deadline: deadline) {
            let (collector, ctx) = bound.value
            collector.timerFired(ctx)
        }
    }

    private func timerFired(_ ctx: ChannelHandlerContext) {
        timer = nil
        guard let due else { return }
        guard due <= .now() else { return arm(at: due, ctx) }
        switch state {
        case .idle: ctx.close(promise: nil)
        case .receiving(let head, _, _): refuse(.text(408, "Request Timeout"), head: head, ctx, reason: "request_timeout")
        case .responding, .closing: break
        }
    }

    func channelRead(context ctx: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if case .idle = state { begin(head, ctx) }
        case .body(var chunk):
            receive(&chunk, ctx)
        case .end:
            if case .receiving(let head, let body, let reserved) = state { dispatch(head, body, reserved: reserved, ctx) }
        }
    }

    /// Appends a body chunk. The body must have a single reference while appending, or every chunk
    /// would copy the whole body so far (quadratic in the body size): so nothing else may hold the
    /// state here, not even a tuple built to switch over it.
    private func receive(_ chunk: inout ByteBuffer, _ ctx: ChannelHandlerContext) {
        guard case .receiving(let head, var body, var reserved) = state else { return }
        state = .responding
        let total = body.readableBytes + chunk.readableBytes
        guard total <= context.maxRequestBytes else {
            state = .receiving(head: head, body: body, reserved: reserved)
            return refuse(.tooLarge, or: \.tooLarge, head: head, ctx, reason: "too_large")
        }
        if total > reserved {
            let more = max(total - reserved, min(Self.firstReservation, context.maxRequestBytes - reserved))
            guard context.inflight.reserve(more) else {
                context.inflight.release(reserved)
                state = .receiving(head: head, body: body, reserved: 0)
                return refuse(.retryLater, or: \.overload, head: head, ctx, reason: "memory")
            }
            reserved += more
        }
        body.writeBuffer(&chunk)
        state = .receiving(head: head, body: body, reserved: reserved)
    }

    private func begin(_ head: HTTPRequestHead, _ ctx: ChannelHandlerContext) {
        context.active.begin()
        counted = true
        let headerBytes = head.headers.reduce(head.uri.utf8.count) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        guard headerBytes <= context.maxHeaderBytes else {
            return refuse(.text(431, "Request Header Fields Too Large"), head: head, ctx, reason: "header_too_large")
        }
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
        if let declared, declared > context.maxRequestBytes {
            return refuse(.tooLarge, or: \.tooLarge, head: head, ctx, reason: "too_large")
        }
        // The buffer is sized for the declared length (no copy as it grows), but memory is reserved
        // as bytes arrive, as for a chunked body: a client that declares 25 MiB and sends nothing
        // must not hold 25 MiB of the budget for a whole timeout (eleven of them would refuse
        // everyone else). A large buffer is its own mapping, resident only where written.
        // A declared length the whole budget could never hold is refused at once.
        let expected = min(declared ?? 0, context.maxRequestBytes)
        let reserve = min(expected, Self.firstReservation)
        guard expected <= context.inflight.limit, context.inflight.reserve(reserve) else {
            return refuse(.retryLater, or: \.overload, head: head, ctx, reason: "memory")
        }
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            ctx.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        state = .receiving(head: head, body: BodyBuffers.allocator.buffer(capacity: expected), reserved: reserve)
        startPhase(ctx)
    }

    /// Bytes reserved when a head arrives, and the step by which a body's reservation grows.
    static let firstReservation = 64 * 1024

    private func dispatch(_ head: HTTPRequestHead, _ body: ByteBuffer, reserved: Int, _ ctx: ChannelHandlerContext) {
        due = nil
        state = .responding
        // The wire bytes reserved so far pass to the request's lease, which decoders extend.
        let memory = MemoryLease(budget: context.inflight, holding: reserved)
        let request = CollectorRequest(method: head.method.rawValue, uri: head.uri,
                                       headers: head.headers.map { ($0.name, $0.value) }, body: body, memory: memory)
        let keepAlive = head.isKeepAlive
        let loop = ctx.eventLoop
        let bound = NIOLoopBound((self, ctx), eventLoop: loop)
        let answer: @Sendable (CollectorResponse) -> Void = { response in
            memory.releaseAll()
            loop.execute {
                let (collector, ctx) = bound.value
                collector.write(response, version: head.version, keepAlive: keepAlive, ctx)
            }
        }
        let route: Router.Route
        switch context.router.resolve(request) {
        case .failure(let unrouted):
            memory.releaseAll()
            return write(unrouted.response, version: head.version, keepAlive: keepAlive, ctx)
        case .success(let found): route = found
        }
        switch route.execution {
        case .inline(let handler):
            memory.releaseAll()
            write(handler(request), version: head.version, keepAlive: keepAlive, ctx)
        case .deferred(let handler):
            memory.releaseAll()
            handler(request, answer)
        case .worker(let handler):
            guard context.pool.trySubmit({ answer(handler(request)) }) else {
                memory.releaseAll()
                overloaded(route: route, reason: "queue_full", bytes: body.readableBytes)
                return write(route.overload, version: head.version, keepAlive: keepAlive, ctx)
            }
        }
    }

    /// Answers at once and closes: the rest of the body is not read. With `answer`, the route's own
    /// answer of that kind replaces `response` (Sentry clients get Sentry's).
    private func refuse(_ response: CollectorResponse, or answer: KeyPath<Router.Route, CollectorResponse>? = nil,
                        head: HTTPRequestHead, _ ctx: ChannelHandlerContext, reason: String) {
        due = nil
        let route = context.router.route(for: head.method.rawValue, path: CollectorRequest.path(of: head.uri))
        let response = answer.flatMap { route?[keyPath: $0] } ?? response
        // The bytes received, or before any arrived, the length the client declared.
        var bytes = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        if case .receiving(_, let body, let reserved) = state {
            context.inflight.release(reserved)
            if body.readableBytes > 0 { bytes = body.readableBytes }
        }
        if let route, route.endpoint != nil {
            report(route: route, response: response, reason: reason, bytes: bytes)
        }
        state = .responding
        write(response, version: head.version, keepAlive: false, ctx)
    }

    private func overloaded(route: Router.Route, reason: String, bytes: Int) {
        context.telemetry.count(MetricCatalog.overload, ("reason", reason))
        if route.endpoint != nil { report(route: route, response: route.overload, reason: reason, bytes: bytes) }
    }

    /// The audit line and metrics of a crash refused by the front before reaching a worker.
    private func report(route: Router.Route, response: CollectorResponse, reason: String, bytes: Int) {
        let t = context.telemetry
        t.count(MetricCatalog.incomingCrash, ("endpoint", route.endpoint!))
        // Busy is 503, or 429 for Sentry clients.
        let busy = response.status == 503 || response.status == 429
        if busy {
            if reason != "queue_full" { t.count(MetricCatalog.overload, ("reason", reason)) }
        } else {
            t.count(MetricCatalog.malformed, ("reason", reason))
        }
        let outcome: AuditRecord.Outcome = response.status == 413 ? .too_large : busy ? .retry_later : .malformed
        t.audit(AuditRecord(endpoint: route.endpoint!, outcome: outcome, reason: reason, payloadSize: bytes, status: response.status),
                fromEventLoop: true)
    }

    private func write(_ response: CollectorResponse, version: HTTPVersion, keepAlive: Bool, _ ctx: ChannelHandlerContext) {
        let keepAlive = keepAlive && !context.draining.withLockedValue { $0 }
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.telemetry.count(MetricCatalog.response, ("status", String(response.status)))
        ctx.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .init(statusCode: response.status), headers: headers))), promise: nil)
        ctx.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        // Ready for the next request before the end is written: NIO's pipelining handler hands
        // over a request that arrived meanwhile from inside that write.
        finishCounting()
        if keepAlive {
            state = .idle
            startPhase(ctx)
            ctx.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            state = .closing
            let channel = ctx.channel
            ctx.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context ctx: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else { return ctx.fireUserInboundEventTriggered(event) }
        switch state {
        case .idle: ctx.close(promise: nil)
        case .receiving(let head, _, _): refuse(.text(408, "Request Timeout"), head: head, ctx, reason: "read_timeout")
        case .responding, .closing: break  // a worker is on it (the pipeline has its own budgets), or closing
        }
    }

    private func finishCounting() {
        if counted { context.active.end() }
        counted = false
    }

    func channelInactive(context ctx: ChannelHandlerContext) {
        due = nil
        timer?.cancel()
        timer = nil
        // A worker may still be on this request; its answer has nowhere to go, so stop waiting for it.
        finishCounting()
        if case .receiving(_, _, let reserved) = state { context.inflight.release(reserved) }
        state = .closing
        ctx.fireChannelInactive()
    }

    /// The decoder refused what the client sent. NIO's own error handler is off, so the answer and
    /// its accounting are ours: 431 for a head past the decoder's limit, 400 for anything else it
    /// cannot parse (a bad chunk size, bytes that are not HTTP). A request whose head had arrived
    /// gets its crash's metric and audit line like any refusal; bytes that never made a head are
    /// not known to be a crash, and are counted by `malformed` alone.
    func errorCaught(context ctx: ChannelHandlerContext, error: Error) {
        guard let parseError = error as? HTTPParserError else { return ctx.close(promise: nil) }
        let (response, reason) = parseError == .headerOverflow
            ? (CollectorResponse.text(431, "Request Header Fields Too Large"), "header_too_large")
            : (CollectorResponse.text(400, "Bad Request"), "invalid_http")
        switch state {
        case .receiving(let head, _, _):
            refuse(response, head: head, ctx, reason: reason)
        case .idle:
            due = nil
            context.telemetry.count(MetricCatalog.malformed, ("reason", reason))
            state = .responding
            write(response, version: .http1_1, keepAlive: false, ctx)
        case .responding:
            // Bytes after a request whose answer is on its way (the pipelining handler holds the
            // error until that answer ends, and hands it on from inside its last write): the
            // answer is flushed before the connection closes.
            context.telemetry.count(MetricCatalog.malformed, ("reason", reason))
            ctx.flush()
            ctx.close(promise: nil)
        case .closing:
            // The rest of a refused request (its body, cut off): already answered and counted.
            ctx.flush()
            ctx.close(promise: nil)
        }
    }
}
