import Collector
@main struct Main { static func main() { print(CrashID.make(result: .accept, date: .init())) } }
