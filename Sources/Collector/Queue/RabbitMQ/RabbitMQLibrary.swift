import CRabbitMQ

/// rabbitmq-c's functions, loaded (`dlopen`) the first time a RabbitMQ connection is made rather
/// than linked: the library brings OpenSSL's libcrypto and libssl, about 1.7 MB resident in every
/// collector that never speaks AMQP (docs/performance.md, "Issue 16, fifth pass").
enum RabbitMQLibrary {
    static let loaded: Result<breakwater_amqp_functions, Backends.StartupError> = {
        var error: UnsafePointer<CChar>?
        let functions = breakwater_amqp_load(&error)
        if let error { return .failure(Backends.StartupError("CRASHQUEUE=rabbitmq needs librabbitmq.so.4: \(String(cString: error))")) }
        return .success(functions)
    }()
}
