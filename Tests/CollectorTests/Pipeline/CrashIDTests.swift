import Foundation
import Testing
@testable import Collector

struct CrashIDTests {
    /// Socorro's shape: a version-4 UUID whose last seven characters are the throttle digit and
    /// the UTC date, all lowercase hex; and no two alike.
    @Test func crashIDsAreVersion4UUIDsEndingInDigitAndDate() {
        let date = Date(timeIntervalSince1970: 1_796_083_200)  // 2026-12-01 UTC
        let ids = (0..<2000).map { i in CrashID.make(result: i % 2 == 0 ? .accept : .defer, date: date) }
        #expect(Set(ids).count == ids.count)
        for (i, id) in ids.enumerated() {
            let chars = Array(id)
            #expect(CrashID.isValid(id), "\(id)")
            #expect(chars[14] == "4", "version nibble: \(id)")
            #expect("89ab".contains(chars[19]), "variant: \(id)")
            #expect(id.hasSuffix((i % 2 == 0 ? "0" : "1") + "261201"), "\(id)")
        }
        // Every hex digit turns up in the random part (a stuck nibble would not).
        #expect(Set(ids.flatMap { $0.prefix(29).filter { $0 != "-" } }).count == 16)
    }

    @Test func sentryEventIDsAre32LowercaseHexDigits() {
        let ids = (0..<100).map { _ in SentryEventReport.newEventID() }
        #expect(Set(ids).count == 100)
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
            #expect(Array(id)[12] == "4", "\(id)")
        }
    }
}
