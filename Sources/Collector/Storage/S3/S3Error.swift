/// An S3 request that failed: the HTTP status and, from the XML error body, S3's error code and
/// request id (what AWS support asks for). Carries no credentials, so it is safe to log whole.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public let method: String
    public let key: String
    public let status: Int
    /// `SignatureDoesNotMatch`, `NoSuchBucket`, … or `HTTP <status>` when the body had none (HEAD).
    public let code: String
    public let message: String
    public let requestID: String

    init(method: String, key: String, status: Int, body: String, requestIDHeader: String?) {
        self.method = method
        self.key = key
        self.status = status
        code = S3XML.value(of: "Code", in: body) ?? "HTTP \(status)"
        message = S3XML.value(of: "Message", in: body) ?? ""
        requestID = S3XML.value(of: "RequestId", in: body) ?? requestIDHeader ?? ""
    }

    public var description: String {
        "S3 \(method) \(key.isEmpty ? "(bucket)" : key): \(status) \(code)"
            + (message.isEmpty ? "" : " (\(message))") + (requestID.isEmpty ? "" : " request id \(requestID)")
    }
}

extension S3Error: DefinitiveFailure {
    /// S3 answered and refuses this request (access denied, no such bucket, bad signature…);
    /// 408 and 429 only ask to try again later.
    public var isDefinitive: Bool { (400..<500).contains(status) && status != 408 && status != 429 }
}
