import Foundation

/// The fields of a service-account key file (`"type": "service_account"`) that signing needs.
/// Its description names the account and the key id only: the private key is never printed.
public struct ServiceAccountKey: Sendable, CustomStringConvertible {
    public let clientEmail: String
    public let privateKeyID: String
    /// PEM, PKCS#8 as Google issues it.
    let privateKeyPEM: String
    public let tokenURI: String

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses the file's JSON. Errors say which field is missing, never what the file contains.
    public init(json: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw Invalid(description: "not a JSON object")
        }
        guard let type = object["type"] as? String, type == "service_account" else {
            throw Invalid(description: "\"type\" is not \"service_account\" (only service-account keys are supported)")
        }
        func field(_ name: String) throws -> String {
            guard let value = object[name] as? String, !value.isEmpty else { throw Invalid(description: "no \"\(name)\" field") }
            return value
        }
        clientEmail = try field("client_email")
        privateKeyPEM = try field("private_key")
        privateKeyID = (object["private_key_id"] as? String) ?? ""
        tokenURI = (object["token_uri"] as? String) ?? "https://oauth2.googleapis.com/token"
    }

    public var description: String { "service account \(clientEmail) (key \(privateKeyID))" }
}
