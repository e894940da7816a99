import ArgumentParser

@main
struct RDBCat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rdbcat",
        abstract: "Inspect, convert and import Redis/Valkey RDB snapshots and AOF logs.",
        version: "0.1.0",
        subcommands: [Cat.self, ImportCommand.self, SyncCommand.self, MigrateCommand.self, ServeCommand.self],
        defaultSubcommand: Cat.self
    )
}
