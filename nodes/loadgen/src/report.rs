//! Reports: JSON for scripts, a table for people.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of a histogram of µs.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One step of a rooms run.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// Offered total rate (messages/s), `None` for a closed loop.
    pub offered: Option<f64>,
    /// Closed-loop window per sender.
    pub window: Option<u32>,
    /// Seconds.
    pub secs: f64,
    /// SENDs written.
    pub sent: u64,
    /// SENDs receipted.
    pub receipted: u64,
    /// Receipted messages per second, over `answer_secs`.
    pub messages_per_sec: f64,
    /// Seconds from the step's start to its last RECEIPT (at least the step's length).
    pub answer_secs: f64,
    /// Seconds from the step's start to its last delivery (at least the step's length).
    pub delivery_secs: f64,
    /// Deliveries seen.
    pub delivered: u64,
    /// Deliveries expected (receipted × subscribers of the room).
    pub expected: u64,
    /// Deliveries per second, over `delivery_secs`.
    pub deliveries_per_sec: f64,
    /// Intended send → delivered.
    pub deliver: Latency,
    /// Intended send → RECEIPT.
    pub receipt: Latency,
    /// The server's CPU over the step and its pause, when its process id was given.
    pub server_cpu: Option<CpuUse>,
    /// The load generator's own CPU over the same time: on a shared machine it competes with the
    /// server for the same cores.
    pub loadgen_cpu: CpuUse,
}

/// CPU a process used over one step (user + system time of all its threads).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CpuUse {
    /// Cores busy on average (CPU seconds / wall seconds).
    pub cores: f64,
    /// CPU µs per receipted message: every delivery, RECEIPT and write of it included.
    pub us_per_message: f64,
}

impl CpuUse {
    /// `cpu_secs` used over `wall_us` in which `messages` were receipted.
    pub fn of(cpu_secs: f64, wall_us: u64, messages: u64) -> CpuUse {
        CpuUse {
            cores: cpu_secs * 1e6 / wall_us.max(1) as f64,
            us_per_message: cpu_secs * 1e6 / messages.max(1) as f64,
        }
    }
}

/// Formats a rooms report as a table.
pub fn rooms_table(r: &crate::scenario::rooms::RoomsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} vs {}: {} rooms x {} members, {} sender(s)/room, {} B bodies; setup {:.1}s; {}",
        r.scenario,
        r.target,
        r.spec.rooms,
        r.spec.members,
        r.spec.senders_per_room,
        r.spec.body_bytes,
        r.setup_secs,
        if r.clean { "clean" } else { "NOT CLEAN" },
    );
    let _ = writeln!(
        out,
        "{:>10} {:>9} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6}",
        "offered/s",
        "msgs/s",
        "deliv/s",
        "delivered",
        "d.p50ms",
        "d.p99ms",
        "d.maxms",
        "r.p50ms",
        "r.p99ms",
        "r.maxms",
        "cores",
        "cpu.us/m",
        "lg.cores"
    );
    for s in &r.steps {
        let offered = match (s.offered, s.window) {
            (Some(rate), _) => format!("{rate:.0}"),
            (None, Some(w)) => format!("closed/{w}"),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:>10} {:>9.0} {:>10.0} {:>12} {:>8.2} {:>8.2} {:>8.1} {:>8.2} {:>8.2} {:>8.1} {:>6} {:>8} {:>6.2}",
            offered,
            s.messages_per_sec,
            s.deliveries_per_sec,
            format!("{}/{}", s.delivered, s.expected),
            s.deliver.p50_ms,
            s.deliver.p99_ms,
            s.deliver.max_ms,
            s.receipt.p50_ms,
            s.receipt.p99_ms,
            s.receipt.max_ms,
            s.server_cpu
                .map_or("-".into(), |c| format!("{:.2}", c.cores)),
            s.server_cpu
                .map_or("-".into(), |c| format!("{:.1}", c.us_per_message)),
            s.loadgen_cpu.cores,
        );
    }
    let t = &r.tally;
    let _ = writeln!(
        out,
        "missing {} dup/reordered {} seq gaps {} refused {} error frames {} dropped {} late sends {}",
        r.missing,
        t.duplicates_or_reordered,
        t.seq_gaps,
        t.refused,
        t.error_frames,
        t.dropped,
        t.late_sends
    );
    for e in &t.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    out
}
