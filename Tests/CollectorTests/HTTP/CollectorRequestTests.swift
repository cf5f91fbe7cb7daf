import Testing
@testable import Collector

struct CollectorRequestTests {
    /// Header names match ignoring ASCII case only: `@` and `` ` `` differ by the case bit too.
    @Test func headerLookupIgnoresASCIICaseOnly() {
        let request = CollectorRequest(method: "POST", uri: "/submit",
                                       headers: [("Content-TYPE", "a"), ("X-@", "b"), ("content-type", "c")],
                                       body: .init())
        #expect(request.header("content-type") == "a")
        #expect(request.header("CONTENT-TYPE") == "a")
        #expect(request.header("x-@") == "b")
        #expect(request.header("x-`") == nil)
        #expect(request.header("content_type") == nil)
        #expect(request.header("content-typ") == nil)
    }
}
