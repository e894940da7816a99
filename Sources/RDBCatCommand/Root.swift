import ArgumentParser

/// The root command's configuration, shared by the two executables: rdbcat-full has every subcommand,
/// rdbcat only `cat` (it hands everything else to rdbcat-full).
package func rdbcatConfiguration(subcommands: [any ParsableCommand.Type]) -> CommandConfiguration {
    CommandConfiguration(
        commandName: "rdbcat",
        abstract: "Inspect, convert and import Redis/Valkey RDB snapshots and AOF logs.",
        version: "0.1.0",
        subcommands: subcommands,
        defaultSubcommand: Cat.self
    )
}
