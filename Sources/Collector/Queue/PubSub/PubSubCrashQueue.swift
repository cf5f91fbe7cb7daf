import Foundation
import Logging
import NIOCore
import Telemetry

/// `CRASHQUEUE=pubsub`: publishes each crash ID as a message's data (UTF-8, no attributes) to
/// `projects/<project>/topics/<topic>` with the REST API, as Socorro's processor reads it. A
/// publish counts only when Pub/Sub answered with a message ID for every message; otherwise the
/// call throws and the ID stays in the outbox. One call per crash on the live path; the outbox
/// drain sends what is pending in one call (`publish(batch:)`).
public final class PubSubCrashQueue: CrashQueue {
    public let client: GoogleAPIClient
    public let project: String
    public let topic: String
    /// Pub/Sub's limit of messages per publish request.
    static let maxMessagesPerCall = 1000
    private let logger: Logger

    public init(client: GoogleAPIClient, project: String, topic: String, telemetry: Telemetry) {
        self.client = client
        self.project = project
        self.topic = topic
        logger = telemetry.logger("breakwater.pubsub")
    }

    /// The configured queue (`CRASHQUEUE=pubsub`), checked as `verifyAtStartup` says.
    public static func configured(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> PubSubCrashQueue {
        guard !config.pubsubProjectID.isEmpty, !config.pubsubTopic.isEmpty else {
            throw Backends.StartupError("CRASHQUEUE=pubsub needs PUBSUB_PROJECT_ID and PUBSUB_TOPIC "
                + "(or Antenna's CRASHMOVER_CRASHPUBLISH_PROJECT_ID and CRASHMOVER_CRASHPUBLISH_TOPIC_NAME)")
        }
        // Half the publish budget per request leaves room for one retry.
        let client = try GoogleAPIClient.configured(config, emulator: config.pubsubEmulatorHost, emulatorVariable: "PUBSUB_EMULATOR_HOST",
                                                    service: "https://pubsub.googleapis.com", timeout: max(config.publishBudget / 2, 0.5))
        let queue = PubSubCrashQueue(client: client, project: config.pubsubProjectID, topic: config.pubsubTopic, telemetry: telemetry)
        try queue.verifyAtStartup()
        return queue
    }

    /// `projects/<project>/topics/<topic>`.
    public var topicPath: String { "projects/\(project)/topics/\(topic)" }

    private var resource: String { "/v1/projects/\(GoogleAPIClient.encode(project))/topics/\(GoogleAPIClient.encode(topic))" }

    /// The topic must exist and be readable: a missing topic or refused credentials stop start-up;
    /// an unreachable service does not (the collector starts degraded, the heartbeat reports it).
    /// Unlike Antenna, nothing is published: a processor never sees a fake crash ID.
    public func verifyAtStartup() throws {
        do {
            try getTopic()
            logger.info("pubsub topic ready", metadata: ["topic": "\(topicPath)", "api": "\(client.baseURL)"])
        } catch {
            let message = "Pub/Sub topic \(topicPath) at \(client.baseURL) is not usable (check PUBSUB_PROJECT_ID, "
                + "PUBSUB_TOPIC, the credentials and the topic's roles): \(error)"
            if GoogleAPIError.isRejection(error) { throw Backends.StartupError(message) }
            logger.error("pubsub unreachable at start-up; starting degraded", metadata: ["topic": "\(topicPath)", "error": "\(error)"])
        }
    }

    public func publish(_ crashID: String) throws {
        try publishCall([crashID])
    }

    public func publish(batch crashIDs: [String]) -> (published: Int, failure: Error?) {
        var published = 0
        for start in stride(from: 0, to: crashIDs.count, by: Self.maxMessagesPerCall) {
            let chunk = Array(crashIDs[start..<min(start + Self.maxMessagesPerCall, crashIDs.count)])
            do {
                try publishCall(chunk)
                published += chunk.count
            } catch {
                return (published, error)
            }
        }
        return (published, nil)
    }

    /// Pub/Sub's `projects.topics.get`: is the service up, the topic there and readable?
    public func check() -> HealthStatus {
        do {
            try getTopic()
            return .ok
        } catch {
            return .error("Pub/Sub topic \(topicPath) at \(client.baseURL): \(error)")
        }
    }

    private func getTopic() throws {
        _ = try client.call("get \(topicPath)", .GET, resource).wait()
    }

    /// One publish request; returns once Pub/Sub gave a message ID for each message.
    private func publishCall(_ crashIDs: [String]) throws {
        let messages = crashIDs.map { JSONValue.object(["data": .string(Data($0.utf8).base64EncodedString())]) }
        let request = JSONValue.object(["messages": .array(messages)]).serialized()
        let body: ByteBuffer
        do {
            body = try client.call("publish to \(topicPath)", .POST, resource + ":publish",
                                   contentType: "application/json", body: ByteBuffer(string: request)).wait()
        } catch {
            logger.warning("pubsub publish failed", metadata: ["topic": "\(topicPath)", "count": "\(crashIDs.count)",
                                                               "first_crash_id": "\(crashIDs.first ?? "")", "error": "\(error)"])
            throw error
        }
        let answer = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let ids = (answer?["messageIds"] as? [String]) ?? []
        guard ids.count == crashIDs.count else {
            throw GoogleAPIError(operation: "publish to \(topicPath): \(ids.count) message IDs for \(crashIDs.count) messages",
                                 status: 200, body: ByteBuffer())
        }
    }
}
