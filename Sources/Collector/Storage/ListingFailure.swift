/// A listing (`breakwater republish --date`) the server answered in a way that would never end
/// or would end early: a continuation token given twice, or a page that cannot be read. Stopping
/// with this error beats looping forever or republishing part of a day as if it were all of it.
public struct ListingFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
}
