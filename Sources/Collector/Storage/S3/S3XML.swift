import Foundation

/// The few bits of S3's XML responses the collector reads: element texts by tag name.
/// S3 answers are flat and machine-written, so a scan for `<Tag>…</Tag>` is enough and avoids
/// FoundationXML's libxml2 dependency.
enum S3XML {
    /// The text of every `<tag>…</tag>` element in document order, entities decoded.
    static func values(of tag: String, in xml: String) -> [String] {
        let open = "<\(tag)>", close = "</\(tag)>"
        var out: [String] = []
        var rest = xml[...]
        while let start = rest.range(of: open), let end = rest[start.upperBound...].range(of: close) {
            out.append(decodeEntities(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return out
    }

    static func value(of tag: String, in xml: String) -> String? { values(of: tag, in: xml).first }

    private static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
