import RDBKit

/// AOF input for the RESP writer: the keys of an RDB preamble / RDB base are written as commands as
/// usual, then every AOF command is passed through as a RESP array (inline commands become RESP too),
/// so that `redis-cli --pipe` replays the whole AOF into a server.
///
/// Each AOF file starts in db 0 (as the server loads it), and the preamble may leave the target in another
/// database: a `SELECT` is written before a command whenever the target's database differs from the one
/// the command runs in. With `emitSelect` off, the AOF's own `SELECT` commands are left out too (everything
/// goes to the connection's database). Annotations (`#TS:`) are not written: a server would reject them.
extension RESPWriter: AOFVisitor {
    public mutating func command(_ command: AOFCommand) throws {
        let isSelect = command.nameEquals("SELECT")
        if isSelect && !options.emitSelect { return }
        if options.emitSelect && !isSelect && committedDB != command.db {
            enc.select(command.db)
            commandsWritten += 1
        }
        enc.command(command.args)
        commandsWritten += 1
        if options.emitSelect { committedDB = command.db }
        out.commit()
        try out.flushIfNeeded()
    }

    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws {
        try out.flush()
    }
}
