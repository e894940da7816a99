import RDBMigration

/// One result row, read by position as a driver converts it. Each method throws when the value is not of
/// that type; nil is SQL NULL.
protocol TaskRowColumns {
    var count: Int { get }
    func text(_ index: Int) throws -> String?
    func real(_ index: Int) throws -> Double?
    func integer(_ index: Int) throws -> Int?
    func bool(_ index: Int) throws -> Bool?
}

extension TaskRecord {
    /// A record from a row holding `TaskSQL.columns` in order. A row that does not make one (a NULL where a
    /// value is required, a wrong type, an unknown status) is an error naming the task and the column.
    init(reading row: some TaskRowColumns) throws {
        guard row.count >= TaskSQL.columns.count else {
            throw TaskStoreError("migration_tasks: a row has \(row.count) columns, \(TaskSQL.columns.count) expected")
        }
        let reader = TaskRowReader(row: row, id: (try? row.text(0)) ?? nil)
        let id = try reader.required(0, row.text)
        self.init(
            id: id,
            projectID: try reader.required(1, row.text),
            name: try reader.required(2, row.text),
            request: try reader.required(3, row.text),
            sealedSecrets: try reader.optional(4, row.text),
            target: try reader.required(5, row.text),
            status: try TaskSQL.status(reader.required(6, row.text), in: "task \(id)"),
            phase: try reader.required(7, row.text),
            createdAt: try reader.required(8, row.real),
            updatedAt: try reader.required(9, row.real),
            startedAt: try reader.optional(10, row.real),
            finishedAt: try reader.optional(11, row.real),
            progress: try reader.optional(12, row.text),
            checkpoint: try reader.optional(13, row.text),
            report: try reader.optional(14, row.text),
            failure: try reader.optional(15, row.text),
            stopRequested: try reader.required(16, row.bool),
            owner: try reader.optional(17, row.text),
            leaseUntil: try reader.optional(18, row.real),
            attempts: try reader.required(19, row.integer)
        )
    }
}

/// Reads columns of one row, turning a driver's conversion error or an unexpected NULL into an error that
/// names the column and the task.
struct TaskRowReader<Row: TaskRowColumns> {
    let row: Row
    /// The task the row is about, when known (for errors).
    let id: String?
    /// The row's column names (for errors).
    var columns = TaskSQL.columns

    private func place(_ index: Int) -> String {
        let column = index < columns.count ? columns[index] : "#\(index + 1)"
        return id.map { "column \(column) of task \($0)" } ?? "column \(column)"
    }

    func optional<T>(_ index: Int, _ read: (Int) throws -> T?) throws -> T? {
        do {
            return try read(index)
        } catch {
            throw TaskStoreError("migration_tasks: \(place(index)) holds a value of the wrong type (\(T.self) expected)")
        }
    }

    func required<T>(_ index: Int, _ read: (Int) throws -> T?) throws -> T {
        guard let value = try optional(index, read) else {
            throw TaskStoreError("migration_tasks: \(place(index)) is NULL")
        }
        return value
    }
}
