import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
@testable import Collector

/// The emulators `scripts/services/gcs.sh` and `scripts/services/pubsub.sh` run, read from
/// `BREAKWATER_TEST_*`: buckets are made and read through Google's official Python client,
/// topics and subscriptions through the Pub/Sub REST API.
struct GoogleTestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        let description = "BREAKWATER_TEST_GCS_EMULATOR_HOST and BREAKWATER_TEST_PUBSUB_EMULATOR_HOST are not set: run "
            + "scripts/test, or eval \"$(scripts/services/gcs.sh start)\" and eval \"$(scripts/services/pubsub.sh start)\" before swift test"
    }

    struct Failed: Error, CustomStringConvertible { let description: String }

    /// `http://127.0.0.1:PORT`.
    let storageHost: String
    /// `127.0.0.1:PORT`.
    let pubsubHost: String
    let project: String
    let python: String

    static func load() throws -> GoogleTestEnvironment {
        let env = ProcessInfo.processInfo.environment
        guard let storage = env["BREAKWATER_TEST_GCS_EMULATOR_HOST"], let pubsub = env["BREAKWATER_TEST_PUBSUB_EMULATOR_HOST"],
              !storage.isEmpty, !pubsub.isEmpty else { throw Missing() }
        return GoogleTestEnvironment(storageHost: storage, pubsubHost: pubsub, project: env["BREAKWATER_TEST_PUBSUB_PROJECT"] ?? "test",
                                     python: env["BREAKWATER_TEST_GCS_PYTHON"] ?? "python3")
    }

    var storagePort: Int { URLComponents(string: storageHost)!.port! }
    var pubsubPort: Int { Int(pubsubHost.split(separator: ":").last!)! }

    static func unique(_ label: String) -> String { "\(label)-\(UUID().uuidString.lowercased().prefix(12))" }

    // MARK: Cloud Storage, through google-cloud-storage

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Clients/gcs_objects.py").path

    private func python(_ arguments: [String]) throws -> Data {
        var env = ProcessInfo.processInfo.environment
        env["STORAGE_EMULATOR_HOST"] = storageHost
        let (status, output) = try Tools.run("/usr/bin/env", [python, Self.script] + arguments, environment: env)
        guard status == 0 else { throw Failed(description: "gcs_objects.py \(arguments.joined(separator: " ")): \(output)") }
        return Data(output.utf8)
    }

    /// A fresh bucket, so a scenario's listing holds only its own crashes.
    func makeBucket() throws -> String {
        let name = Self.unique("breakwater")
        _ = try python(["create", name])
        return name
    }

    /// Every object under `prefix` in `bucket`, read with the official client.
    func objects(in bucket: String, under prefix: String = "") throws -> [String: [UInt8]] {
        let json = try JSONSerialization.jsonObject(with: try python(["dump", bucket, prefix])) as? [String: String] ?? [:]
        return json.mapValues { [UInt8](Data(base64Encoded: $0)!) }
    }

    /// What an operator would configure for this bucket and topic, emulators included.
    func configuration(bucket: String, topic: String) -> CollectorConfiguration {
        var config = CollectorConfiguration()
        config.crashStorage = "gcs"
        config.gcsBucket = bucket
        config.storageEmulatorHost = storageHost
        config.crashQueue = "pubsub"
        config.pubsubProjectID = project
        config.pubsubTopic = topic
        config.pubsubEmulatorHost = pubsubHost
        return config
    }

    // MARK: Pub/Sub, through its REST API

    private func rest(_ method: HTTPMethod, _ path: String, _ body: String? = nil) throws -> (status: Int, json: [String: Any]) {
        var request = try HTTPClient.Request(url: "http://\(pubsubHost)/v1/projects/\(project)/\(path)", method: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .string(body)
        }
        let response = try HTTPClient.shared.execute(request: request, deadline: .now() + .seconds(10)).wait()
        let data = Data((response.body ?? ByteBuffer()).readableBytesView)
        return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
    }

    /// A fresh topic with one subscription that sees everything published to it from now on.
    func makeTopic() throws -> (topic: String, subscription: String) {
        let topic = Self.unique("crashes"), subscription = Self.unique("processor")
        guard try rest(.PUT, "topics/\(topic)").status == 200,
              try rest(.PUT, "subscriptions/\(subscription)", #"{"topic":"projects/\#(project)/topics/\#(topic)"}"#).status == 200 else {
            throw Failed(description: "cannot create topic \(topic) and its subscription")
        }
        return (topic, subscription)
    }

    /// Pulls and acknowledges what is waiting on `subscription`: the messages' data as text.
    /// Every message must carry only data (no attributes), as Socorro expects.
    func pull(_ subscription: String) throws -> [String] {
        let answer = try rest(.POST, "subscriptions/\(subscription):pull", #"{"maxMessages":1000,"returnImmediately":true}"#)
        let received = (answer.json["receivedMessages"] as? [[String: Any]]) ?? []
        var out: [String] = []
        var ackIDs: [String] = []
        for item in received {
            let message = item["message"] as? [String: Any] ?? [:]
            guard (message["attributes"] as? [String: Any] ?? [:]).isEmpty else { throw Failed(description: "message with attributes: \(message)") }
            out.append(String(decoding: Data(base64Encoded: message["data"] as? String ?? "") ?? Data(), as: UTF8.self))
            if let ack = item["ackId"] as? String { ackIDs.append(ack) }
        }
        if !ackIDs.isEmpty {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["ackIds": ackIDs]), as: UTF8.self)
            _ = try rest(.POST, "subscriptions/\(subscription):acknowledge", body)
        }
        return out
    }

    /// Pulls until every one of `ids` arrived or `timeout` passes; everything pulled.
    func waitFor(_ ids: [String], on subscription: String, timeout: Double) async throws -> [String] {
        let end = Date().addingTimeInterval(timeout)
        var received: [String] = []
        while true {
            received += try pull(subscription)
            if Set(received).isSuperset(of: ids) || Date() > end { return received }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }
}

/// A bucket of the GCS emulator as it really is, read with the official client in one listing
/// (taken when the truth is made), for the fault tally.
struct GCSTruth: StorageTruth {
    let contents: [String: [UInt8]]

    init(_ env: GoogleTestEnvironment, bucket: String) throws {
        contents = try env.objects(in: bucket, under: "v1/")
    }

    func object(_ key: String) throws -> [UInt8]? { contents[key] }

    func keys(under prefix: String) throws -> [String] { contents.keys.filter { $0.hasPrefix(prefix) }.sorted() }
}
