import Testing
@testable import Collector

@Suite struct AMQPURLTests {
    @Test func readsEveryPart() throws {
        let u = try AMQPURL("amqp://alice:s%40cret@broker.example:5673/prod")
        #expect(!u.tls && u.host == "broker.example" && u.port == 5673)
        #expect(u.user == "alice" && u.password == "s@cret" && u.vhost == "prod")
        #expect(u.masked == "amqp://alice:********@broker.example:5673/prod")
    }

    @Test func cloudAMQPStyleTLSURLDefaultsToPort5671() throws {
        let u = try AMQPURL("amqps://user:pw@rat.rmq2.cloudamqp.com/user")
        #expect(u.tls && u.port == 5671 && u.vhost == "user" && u.host == "rat.rmq2.cloudamqp.com")
    }

    @Test func defaultsFollowTheRabbitMQURISpec() throws {
        let u = try AMQPURL("amqp://localhost")
        #expect(u.port == 5672 && u.user == "guest" && u.password == "guest" && u.vhost == "/")
        #expect(try AMQPURL("amqp://h/%2f").vhost == "/")
        #expect(try AMQPURL("amqp://h/a%2fb").vhost == "a/b")
    }

    /// A password with a character not percent-encoded, or a URL without a scheme, does not parse
    /// as one: whatever precedes the last `@` is masked, in the value and in the error.
    @Test(arguments: ["amqp://u:p#ss3cret@h/", "amqp://u:p ss3cret@h", "amqp://u:100%s3cret@h", "amqps://u:a/s3cret@h",
                      "u:s3cret@h:5672", "amqp://u:s3cret@h@h2/"])
    func aPasswordIsMaskedEvenInAURLThatDoesNotParse(_ url: String) {
        let masked = CollectorConfiguration.maskingPassword(in: url)
        #expect(!masked.contains("s3cret") && masked.contains("********"), "\(masked)")
        do {
            let parsed = try AMQPURL(url)
            #expect(!parsed.masked.contains("s3cret"))
        } catch {
            #expect(!"\(error)".contains("s3cret"), "\(error)")
        }
    }

    @Test func otherSchemesAreRefusedWithThePasswordMasked() {
        let error = #expect(throws: AMQPURL.Invalid.self) { try AMQPURL("http://u:secret@h/") }
        #expect(error.map { "\($0)".contains("********") && !"\($0)".contains("secret@") } == true)
    }
}
