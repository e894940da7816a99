import Prometheus
import RDBMigration

/// The service's Prometheus metrics (`GET /metrics`): tasks by status (from the store, at each scrape),
/// tasks running here, keys and bytes written, and each online migration's replication lag.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let keys: Counter
    let bytes: Counter
    let ended: [TaskStatus: Counter]

    init() {
        keys = registry.makeCounter(name: "rdbcat_keys_written_total", help: "Keys (and stream commands) written into targets by this service's tasks.")
        bytes = registry.makeCounter(name: "rdbcat_bytes_sent_total", help: "Bytes sent to targets by this service's tasks.")
        var ended: [TaskStatus: Counter] = [:]
        for s in TaskStatus.allCases where s != .migrating {
            ended[s] = registry.makeCounter(name: "rdbcat_task_runs_ended_total", labels: [("status", s.rawValue)],
                                            help: "Task runs this service ended, by final status.")
        }
        self.ended = ended
    }

    func progressed(task: String, keys k: Int, bytes b: Int, lag: Int?) {
        if k > 0 { keys.increment(by: Int64(k)) }
        if b > 0 { bytes.increment(by: Int64(b)) }
        if let lag { lagGauge(task).set(Double(lag)) }
    }

    func finished(_ status: TaskStatus) { ended[status]?.increment() }

    func lagGauge(_ task: String) -> Gauge {
        registry.makeGauge(name: "rdbcat_replication_lag_bytes", labels: [("task_id", task)],
                           help: "Bytes of the source's replication stream received but not yet applied, per online migration.")
    }

    func remove(task: String) {
        registry.unregisterGauge(lagGauge(task))
    }

    /// The exposition text, with the store's task counts and this service's running tasks.
    func render(counts: [TaskStatus: Int], running: Int) -> String {
        for s in TaskStatus.allCases {
            registry.makeGauge(name: "rdbcat_tasks", labels: [("status", s.rawValue)], help: "Tasks in the store, by status.")
                .set(Double(counts[s] ?? 0))
        }
        registry.makeGauge(name: "rdbcat_tasks_running", help: "Tasks running in this service now.").set(Double(running))
        return registry.emitToString()
    }
}
