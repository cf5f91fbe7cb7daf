import ArgumentParser
import Collector
import Foundation
import Logging
import ServiceLifecycle
import Telemetry

@main
struct Breakwater: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "breakwater",
        abstract: "A crash-report collector for Breakpad, Crashpad, Raven and Sentry clients.",
        subcommands: [Serve.self, CheckConfig.self, Submit.self, Republish.self, Spool.self],
        defaultSubcommand: Serve.self)
}

/// Loads configuration or exits non-zero with the reason.
func loadConfiguration() async throws -> CollectorConfiguration {
    do {
        return try await CollectorConfiguration.load()
    } catch {
        FileHandle.standardError.write(Data("breakwater: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

/// - Parameter sink: the server queues its lines for a writer thread; tools write them directly.
func makeTelemetry(_ config: CollectorConfiguration, sink: LogSink = StdoutLogSink()) -> Telemetry {
    Telemetry(sink: sink, logLevel: Logger.Level(rawValue: config.logLevel) ?? .info,
              statsd: StatsdSender(host: config.statsdHost, port: config.statsdPort),
              prefix: config.statsdPrefix,
              prometheus: PrometheusNaming())
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the collector (the default).")

    func run() async throws {
        let config = try await loadConfiguration()
        let telemetry = makeTelemetry(config, sink: BufferedLogSink())
        telemetry.bootstrapGlobally()
        defer { telemetry.flush() }
        InflightBytes.returnLargeBuffersToTheSystem()
        let logger = telemetry.logger("breakwater")
        if telemetry.statsd?.isResolved == false {
            logger.warning("STATSD_HOST does not resolve: no statsd metrics until a restart (/metrics still serves them)",
                           metadata: ["host": "\(config.statsdHost)"])
        }
        let collector: Collector
        do {
            collector = try Collector(config: config, telemetry: telemetry)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: CollectorService(collector: collector))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Runs the collector until a shutdown signal, then drains it.
struct CollectorService: Service {
    let collector: Collector

    func run() async throws {
        _ = try await collector.start()
        // After the service group, the listener and the backends have started: their start-up code
        // runs once, and would otherwise stay resident (docs/performance.md, "Issue 16, ninth pass").
        StartupPages.release()
        try? await gracefulShutdown()
        await collector.shutdown()
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Print the effective configuration (secrets masked) and check it and each backend; non-zero on an invalid value or a failing backend.")

    func run() async throws {
        let config = try await loadConfiguration()
        // Which name each value came from: its own variable, an Antenna one, the config file, or the default.
        for (name, value) in config.described { print("\(name)=\(value)  # \(config.source(of: name))") }
        do {
            // With a Prometheus backend, as `serve` has, so /metrics is listed too.
            let telemetry = Telemetry(sink: CapturingLogSink(), logLevel: .critical, statsd: nil, prometheus: PrometheusNaming())
            // Never started: it takes no lock, so it runs next to a serving collector.
            let collector = try Collector(config: config, telemetry: telemetry)
            for path in collector.router.boundPaths { print("route: \(path)") }
            // A backend that is down does not stop a collector from starting; it is reported here.
            var failing = false
            for (name, check) in Collector.healthChecks(collector.pipeline) {
                switch check() {
                case .ok: print("check \(name): ok")
                case .warning(let detail): print("check \(name): warning: \(detail)")
                case .error(let detail):
                    print("check \(name): error: \(detail)")
                    failing = true
                }
            }
            if failing { throw ExitCode(1) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("breakwater: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
