import RDBKit

/// What a replay writer wrote for a key, readable after its `endKey` (`form` and `needsGuard` already
/// after its `beginKey`): callers learn it here instead of reading the writer's bytes.
public struct KeyPlan: Sendable, Equatable {
    public enum Form: Sendable, Equatable {
        /// One `RESTORE key ttl payload ...`.
        case restore
        /// Commands that build the value (`SET`, `RPUSH`, `XADD`, ..., then expiries).
        case commands
    }

    public var form: Form
    /// Commands written for the key (a `SELECT` before it not included).
    public var commands: Int
    /// The commands add to whatever the key holds (RPUSH, SADD, XADD, ...) instead of replacing it whole
    /// (RESTORE, SET): a safe rebuild deletes the key first or writes under a temporary name.
    public var needsGuard: Bool

    public init(form: Form, commands: Int = 0, needsGuard: Bool) {
        self.form = form
        self.commands = commands
        self.needsGuard = needsGuard
    }
}
