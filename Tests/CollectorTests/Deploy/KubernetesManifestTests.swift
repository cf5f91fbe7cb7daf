import Foundation
import Testing

/// deploy/kubernetes as `kubectl kustomize` renders it: every overlay (and the persistent-outbox
/// variant of each) renders, validates against the Kubernetes schemas, and agrees with what the
/// built binary reads (`breakwater check-config`): variable names, port, probe paths, memory bound,
/// outbox, grace period and load balancer limits.
@Suite struct KubernetesManifestTests {
    /// What is rendered: each overlay, alone and with the persistent-outbox component.
    static let renderings = ["base", "overlays/gcp", "overlays/aws", "overlays/gcp+persistent-outbox", "overlays/aws+persistent-outbox"]

    /// Custom resources kubernetes-validate has no schema for (it warns and skips them).
    static let customResources: Set = ["BackendConfig"]

    @Test(arguments: KubernetesManifestTests.renderings) func rendersAndValidates(_ rendering: String) throws {
        let file = try Self.render(rendering)
        let validator = try #require(Tools.which("kubernetes-validate"), "kubernetes-validate is missing: scripts/test installs it (pip)")
        let result = try Tools.run(validator, ["--strict", file])
        #expect(result.status == 0, "\(result.output)")
        let objects = try Self.objects(file)
        #expect(!objects.isEmpty)
        for object in objects {
            let kind = object["kind"] as? String ?? "?"
            let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? "?"
            if Self.customResources.contains(kind) { continue }
            #expect(result.output.contains("passed for resource \(kind.lowercased())/\(name) "), "\(kind)/\(name) not validated: \(result.output)")
        }
    }

    @Test(arguments: KubernetesManifestTests.renderings) func agreesWithTheBinary(_ rendering: String) throws {
        let manifests = try Manifests(Self.objects(Self.render(rendering)))
        let workload = try #require(manifests.first(["Deployment", "StatefulSet"], "breakwater"), "no breakwater workload")
        let pod = try #require(dig(workload, "spec", "template", "spec") as? [String: Any])
        let containers = try #require(pod["containers"] as? [[String: Any]])
        let container = try #require(containers.first { $0["name"] as? String == "breakwater" })

        // The environment the container gets: ConfigMap and Secret through envFrom, then env.
        var environment: [String: String] = [:]
        for source in container["envFrom"] as? [[String: Any]] ?? [] {
            if let name = dig(source, "configMapRef", "name") as? String {
                let map = try #require(manifests.first(["ConfigMap"], name), "envFrom names a missing ConfigMap \(name)")
                for (key, value) in map["data"] as? [String: String] ?? [:] { environment[key] = value }
            }
            if let name = dig(source, "secretRef", "name") as? String {
                let secret = try #require(manifests.first(["Secret"], name), "envFrom names a missing Secret \(name)")
                for (key, value) in secret["data"] as? [String: String] ?? [:] {
                    environment[key] = String(decoding: Data(base64Encoded: value) ?? Data(), as: UTF8.self)
                }
            }
        }
        for entry in container["env"] as? [[String: Any]] ?? [] {
            let name = try #require(entry["name"] as? String)
            environment[name] = entry["value"] as? String ?? ""
        }

        // Every name is one the binary reads.
        let check = try CheckConfigRun(environment)
        for name in environment.keys.sorted() {
            #expect(check.values[name] != nil, "\(name) is not a variable breakwater reads (check-config)")
        }
        let values = check.values
        func number(_ name: String) throws -> Double { try #require(Double(values[name] ?? ""), "\(name) from check-config") }

        // Port: container, probes, Service, scrape annotation.
        let port = try Int(number("PORT"))
        let ports = try #require(container["ports"] as? [[String: Any]])
        let http = try #require(ports.first { $0["name"] as? String == "http" })
        #expect(http["containerPort"] as? Int == port)
        func resolve(_ value: Any?) -> Int? {
            if let n = value as? Int { return n }
            return ports.first { $0["name"] as? String == value as? String }?["containerPort"] as? Int
        }
        let annotations = try #require(dig(workload, "spec", "template", "metadata", "annotations") as? [String: String])
        #expect(annotations["prometheus.io/port"] == String(port))
        let service = try #require(manifests.first(["Service"], "breakwater"))
        for servicePort in dig(service, "spec", "ports") as? [[String: Any]] ?? [] {
            #expect(resolve(servicePort["targetPort"]) == port, "Service targetPort")
        }

        // Probe and scrape paths are routes the binary serves.
        let probes: [(String, String)] = [("livenessProbe", "/__lbheartbeat__"), ("readinessProbe", "/__heartbeat__"),
                                          ("startupProbe", "/__lbheartbeat__")]
        for (probe, expected) in probes {
            let path = dig(container, probe, "httpGet", "path") as? String
            #expect(path == expected, "\(probe)")
            #expect(check.routes.contains("GET \(path ?? "")"), "\(probe) path \(path ?? "nil") is not a route")
            #expect(resolve(dig(container, probe, "httpGet", "port")) == port, "\(probe) port")
        }
        #expect(check.routes.contains("GET \(annotations["prometheus.io/path"] ?? "")"), "prometheus.io/path is not a route")

        // Memory limit: the collector's bound, MAX_INFLIGHT_BYTES + 64 MiB.
        let bound = try number("MAX_INFLIGHT_BYTES") + 64 * 1_048_576
        let limit = try #require(quantity(dig(container, "resources", "limits", "memory")))
        #expect(limit == bound, "memory limit \(limit) is not MAX_INFLIGHT_BYTES + 64 MiB = \(bound)")
        #expect(quantity(dig(container, "resources", "requests", "memory")) == limit)

        // The outbox: SPOOL_DIR is the mount of a volume larger than SPOOL_MAX_BYTES.
        let spoolDir = try #require(environment["SPOOL_DIR"], "SPOOL_DIR unset: the outbox would be inside the container")
        let mounts = container["volumeMounts"] as? [[String: Any]] ?? []
        let outbox = try #require(mounts.first { $0["mountPath"] as? String == spoolDir }?["name"] as? String,
                                  "SPOOL_DIR \(spoolDir) is not on a volume")
        let volume = (pod["volumes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == outbox }
        let claim = (dig(workload, "spec", "volumeClaimTemplates") as? [[String: Any]] ?? []).first { dig($0, "metadata", "name") as? String == outbox }
        let size = try #require(quantity(dig(volume, "emptyDir", "sizeLimit") ?? dig(claim, "spec", "resources", "requests", "storage")),
                                "the outbox volume has no size")
        let spoolMax = try number("SPOOL_MAX_BYTES")
        #expect(size > spoolMax)
        #expect(rendering.hasSuffix("persistent-outbox") == (claim != nil && volume == nil))

        // Grace period: the preStop pause covers the load balancer's deregistration delay, then
        // SHUTDOWN_DEADLINE, and the kubelet waits longer than both before SIGKILL.
        let grace = try #require(pod["terminationGracePeriodSeconds"] as? Int)
        let pause = try #require(dig(container, "lifecycle", "preStop", "sleep", "seconds") as? Int)
        let deregistration = try manifests.deregistrationDelay()
        let deadline = try number("SHUTDOWN_DEADLINE")
        #expect(Double(pause) >= deregistration, "preStop \(pause) s < deregistration delay \(deregistration) s")
        #expect(Double(grace) > Double(pause) + deadline, "grace \(grace) s <= preStop \(pause) s + SHUTDOWN_DEADLINE \(deadline) s")
        #expect(Double(grace) > deadline + deregistration)

        // The image's user.
        #expect(dig(pod, "securityContext", "runAsUser") as? Int == ContainerImage.dockerfileUser)
        #expect(dig(pod, "securityContext", "runAsNonRoot") as? Bool == true)

        // The load balancer: limits and timeouts match the collector's.
        let ingress = try #require(manifests.first(["Ingress"], "breakwater"))
        let backend = try #require(dig(ingress, "spec", "rules") as? [[String: Any]]).flatMap { rule in
            (dig(rule, "http", "paths") as? [[String: Any]] ?? []).compactMap { dig($0, "backend", "service") as? [String: Any] }
        }
        #expect(!backend.isEmpty && backend.allSatisfy { $0["name"] as? String == "breakwater" })
        let ingressAnnotations = dig(ingress, "metadata", "annotations") as? [String: String] ?? [:]
        let ingressClass = dig(ingress, "spec", "ingressClassName") as? String ?? ingressAnnotations["kubernetes.io/ingress.class"]
        let readTimeout = try number("READ_TIMEOUT"), requestTimeout = try number("REQUEST_TIMEOUT")
        switch ingressClass ?? "" {
        case "nginx":
            let maxRequest = try number("MAX_REQUEST_BYTES"), budgets = try number("SAVE_BUDGET") + number("PUBLISH_BUDGET")
            #expect(quantity(ingressAnnotations["nginx.ingress.kubernetes.io/proxy-body-size"], nginx: true) == maxRequest)
            #expect(Double(ingressAnnotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] ?? "") == readTimeout)
            let read = try #require(Double(ingressAnnotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] ?? ""))
            #expect(read == requestTimeout)
            #expect(read > budgets, "the answer may take SAVE_BUDGET + PUBLISH_BUDGET")
        case "alb":
            #expect(check.routes.contains("GET \(ingressAnnotations["alb.ingress.kubernetes.io/healthcheck-path"] ?? "")"))
            let idle = try #require(attribute(ingressAnnotations["alb.ingress.kubernetes.io/load-balancer-attributes"], "idle_timeout.timeout_seconds"))
            #expect(idle < readTimeout, "the ALB must drop idle connections before the collector does")
        case "gce":
            let name = try #require((dig(service, "metadata", "annotations") as? [String: String])?["cloud.google.com/backend-config"])
            #expect(name.contains("\"breakwater\""))
            let config = try #require(manifests.first(["BackendConfig"], "breakwater"))
            #expect(check.routes.contains("GET \(dig(config, "spec", "healthCheck", "requestPath") as? String ?? "")"))
            #expect(dig(config, "spec", "healthCheck", "port") as? Int == port)
            #expect(Double(dig(config, "spec", "timeoutSec") as? Int ?? 0) >= requestTimeout)
            // Google's load balancer keeps idle backend connections 600 s.
            #expect(readTimeout > 600)
        default:
            Issue.record("unknown ingress class \(ingressClass ?? "nil")")
        }
    }

    /// The Secret carries only secrets, the ConfigMap none; the repository holds no secret value.
    @Test(arguments: KubernetesManifestTests.renderings) func secretsStayInTheSecret(_ rendering: String) throws {
        let manifests = try Manifests(Self.objects(Self.render(rendering)))
        let secretNames: Set = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "RABBITMQ_URL", "SUBMITTER_TOKEN"]
        for map in manifests.all("ConfigMap") {
            let keys = Set((map["data"] as? [String: String] ?? [:]).keys)
            #expect(keys.isDisjoint(with: secretNames), "secrets in a ConfigMap: \(keys.intersection(secretNames))")
        }
        for secret in manifests.all("Secret") {
            for (key, value) in secret["data"] as? [String: String] ?? [:] {
                #expect(secretNames.contains(key), "\(key) is not a secret")
                #expect(value.isEmpty, "\(key) has a value in the repository")
            }
        }
    }

    // MARK: - Rendering

    /// `kubectl kustomize` of one rendering into a temporary file; `X+component` renders overlay X
    /// with components/component through a kustomization made for it.
    static func render(_ rendering: String) throws -> String {
        let kubectl = try #require(Tools.which("kubectl"), "kubectl is missing: scripts/test installs it")
        let deploy = Tools.path("deploy/kubernetes")
        let folder = try Tools.temporaryFolder("kustomize")
        var directory = deploy + "/" + rendering
        let parts = rendering.split(separator: "+").map(String.init)
        if parts.count == 2 {
            // kustomize takes only relative paths to other kustomizations.
            let up = String(repeating: "../", count: folder.split(separator: "/").count)
            try """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                resources: [\(up + deploy.dropFirst() + "/" + parts[0])]
                components: [\(up + deploy.dropFirst() + "/components/" + parts[1])]
                """.write(toFile: folder + "/kustomization.yaml", atomically: true, encoding: .utf8)
            directory = folder
        }
        let result = try Tools.run(kubectl, ["kustomize", directory])
        try #require(result.status == 0, "kubectl kustomize \(rendering): \(result.output)")
        let file = folder + "/rendered.yaml"
        try result.output.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The objects of a rendered file (PyYAML, which kubernetes-validate brings, turns it into JSON).
    static func objects(_ file: String) throws -> [[String: Any]] {
        let python = try #require(Tools.which("python3"))
        let script = "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))"
        let result = try Tools.run(python, ["-c", script, file])
        try #require(result.status == 0, "\(result.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
    }
}

/// The rendered objects by kind and name.
struct Manifests {
    let objects: [[String: Any]]

    init(_ objects: [[String: Any]]) { self.objects = objects }

    func all(_ kind: String) -> [[String: Any]] { objects.filter { $0["kind"] as? String == kind } }

    func first(_ kinds: Set<String>, _ name: String) -> [String: Any]? {
        objects.first { kinds.contains($0["kind"] as? String ?? "") && dig($0, "metadata", "name") as? String == name }
    }

    /// Seconds the load balancer keeps sending to a pod that is leaving: the AWS target group's
    /// deregistration delay, GKE's connection draining, none for ingress-nginx (which follows
    /// the endpoints; the preStop pause covers their update).
    func deregistrationDelay() throws -> Double {
        if let config = first(["BackendConfig"], "breakwater") {
            return Double(try #require(dig(config, "spec", "connectionDraining", "drainingTimeoutSec") as? Int))
        }
        let annotations = first(["Ingress"], "breakwater").flatMap { dig($0, "metadata", "annotations") as? [String: String] } ?? [:]
        if let attributes = annotations["alb.ingress.kubernetes.io/target-group-attributes"] {
            return try #require(attribute(attributes, "deregistration_delay.timeout_seconds"))
        }
        return 0
    }
}

/// `breakwater check-config` run with a rendered environment: the values it prints and its routes.
/// Backends are pointed at a closed loopback port so nothing leaves the machine; an unreachable
/// backend is expected here (the cloud is not), an invalid value is not.
struct CheckConfigRun {
    var values: [String: String] = [:]
    var routes: Set<String> = []

    init(_ rendered: [String: String]) throws {
        var environment = rendered
        let closed = "127.0.0.1:9"
        // Secrets are empty in the repository: stand-ins of the right shape.
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SUBMITTER_TOKEN"] where environment[name] == "" {
            environment[name] = "stand-in"
        }
        if environment["RABBITMQ_URL"] != nil { environment["RABBITMQ_URL"] = "amqp://breakwater:stand-in@\(closed)/" }
        environment["CRASHSTORAGE_S3_ENDPOINT"] = "http://\(closed)"
        environment["STORAGE_EMULATOR_HOST"] = "http://\(closed)"
        environment["PUBSUB_EMULATOR_HOST"] = closed
        environment["GCE_METADATA_HOST"] = closed
        // The outbox path is the container's; here it is a temporary folder.
        environment["SPOOL_DIR"] = try Tools.temporaryFolder("check-config-spool")
        environment["PATH"] = "/usr/bin:/bin"

        let result = try Tools.run(Tools.breakwater, ["check-config"], cwd: Tools.root.path, environment: environment)
        let output = result.output
        // The backends point at a closed port: check-config reports them down (exit 1) and that is
        // all it may complain about.
        let down = output.split(separator: "\n").filter { $0.hasPrefix("check ") && $0.contains(": error: ") }
        try #require(result.status == 0 || (result.status == 1 && !down.isEmpty && down.allSatisfy { $0.contains("refused") || $0.contains("reconnecting") }),
                     "check-config refused the rendered configuration: \(output)")
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), line.first?.isUppercase == true else { continue }
            // `NAME=value  # source`: the value without the note saying where it came from.
            var value = line[line.index(after: equals)...]
            if let note = value.range(of: "  # ") { value = value[..<note.lowerBound] }
            values[String(line[..<equals])] = String(value)
        }
        values["SPOOL_DIR"] = rendered["SPOOL_DIR"]

        // Routes are printed once the collector is built: with backends it cannot reach, build it
        // without them (routes do not depend on backends).
        environment["CRASHSTORAGE"] = "null"
        environment["CRASHQUEUE"] = "null"
        let routed = try Tools.run(Tools.breakwater, ["check-config"], cwd: Tools.root.path, environment: environment)
        try #require(routed.status == 0, "\(routed.output)")
        routes = Set(routed.output.split(separator: "\n").filter { $0.hasPrefix("route: ") }.map { String($0.dropFirst("route: ".count)) })
    }
}

/// A value inside nested JSON objects.
func dig(_ object: Any?, _ keys: String...) -> Any? {
    keys.reduce(object) { ($0 as? [String: Any])?[$1] }
}

/// A Kubernetes quantity (`320Mi`, `2Gi`, `1`) or an nginx size (`25m` is MiB) in bytes.
func quantity(_ value: Any?, nginx: Bool = false) -> Double? {
    if let n = value as? Int { return Double(n) }
    guard let text = value as? String, let match = text.wholeMatch(of: #/([0-9.]+)([A-Za-z]*)/#),
          let number = Double(match.output.1) else { return nil }
    let units: [String: Double] = nginx
        ? ["": 1, "k": 1024, "K": 1024, "m": 1_048_576, "M": 1_048_576, "g": 1_073_741_824, "G": 1_073_741_824]
        : ["": 1, "Ki": 1024, "Mi": 1_048_576, "Gi": 1_073_741_824, "k": 1000, "M": 1_000_000, "G": 1_000_000_000]
    return units[String(match.output.2)].map { number * $0 }
}

/// `name=value` from a comma-separated AWS attribute list.
func attribute(_ list: String?, _ name: String) -> Double? {
    list?.split(separator: ",").compactMap { pair -> Double? in
        let kv = pair.split(separator: "=", maxSplits: 1)
        return kv.count == 2 && kv[0].trimmingCharacters(in: .whitespaces) == name ? Double(kv[1]) : nil
    }.first
}
