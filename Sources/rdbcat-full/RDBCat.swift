import ArgumentParser
import RDBCatCommand

@main
struct RDBCat: ParsableCommand {
    static let configuration = rdbcatConfiguration(
        subcommands: [Cat.self, ImportCommand.self, SyncCommand.self, MigrateCommand.self, ServeCommand.self]
    )

    static func main() {
        objectStoreSupport = .objectStore
        main(nil)
    }
}
