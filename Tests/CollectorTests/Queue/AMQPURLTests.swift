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

    @Test func otherSchemesAreRefusedWithThePasswordMasked() {
        let error = #expect(throws: AMQPURL.Invalid.self) { try AMQPURL("http://u:secret@h/") }
        #expect(error.map { "\($0)".contains("********") && !"\($0)".contains("secret@") } == true)
    }
}
