/// A listing (`breakwater republish --date`) the server answered in a way that would never end
/// or would end early: a continuation token given twice, or a page that cannot be read. Stopping
/// with this error beats looping forever or republishing part of a day as if it were all of it.
public struct ListingFailure: Error, CustomStringConvertible, Sendable {
    public let description: String

    /// Keeps `token`, a listing's next-page token, in `seen`; one given before ends the listing.
    static func refuseRepeated(_ token: String?, seen: inout Set<String>, in listing: String) throws {
        guard let token else { return }
        if !seen.insert(token).inserted { throw ListingFailure(description: "\(listing) gave the same continuation token twice") }
    }
}
