import Testing
@testable import RDBImport

@Test func moduleLoads() { #expect(String(describing: RDBImport.self) == "RDBImport") }
