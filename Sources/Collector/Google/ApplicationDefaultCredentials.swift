import Foundation

/// Google's Application Default Credentials, as its client libraries find them: the key file
/// `GOOGLE_APPLICATION_CREDENTIALS` names, else the metadata server.
public enum ApplicationDefaultCredentials {
    /// - Throws: `Backends.StartupError` naming the variable when the key file is unreadable or
    ///   not a service-account key (its contents are never part of the message).
    public static func tokenCache(keyFile: String, metadataHost: String) throws -> AccessTokenCache {
        guard !keyFile.isEmpty else { return AccessTokenCache(source: MetadataTokenSource(host: metadataHost)) }
        guard let data = FileManager.default.contents(atPath: keyFile) else {
            throw Backends.StartupError("GOOGLE_APPLICATION_CREDENTIALS names \(keyFile), which cannot be read")
        }
        do {
            return AccessTokenCache(source: try ServiceAccountTokenSource(key: try ServiceAccountKey(json: data)))
        } catch {
            throw Backends.StartupError("GOOGLE_APPLICATION_CREDENTIALS \(keyFile) is not a usable service-account key: \(error)")
        }
    }
}
