//! Delivery checks and latency recording.
//!
//! Every connection keeps a [`Tally`] of its own (merged at the end, so the hot path shares nothing
//! but a few relaxed counters of [`Progress`]) and records latencies into the run's [`Recorder`]
//! through a small local buffer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::wire::Stamp;

/// Highest latency recorded, in µs (longer ones are clamped to it).
const MAX_LATENCY_US: u64 = 120_000_000;
/// Samples buffered per connection before they go into the shared histogram.
const BUFFER: usize = 64;

/// Clock of a run: every time in a body is µs since its start.
#[derive(Clone, Copy, Debug)]
pub struct Epoch(Instant);

impl Epoch {
    /// Starts the clock.
    pub fn now() -> Epoch {
        Epoch(Instant::now())
    }

    /// µs since the start.
    pub fn us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }

    /// The instant `us` µs after the start.
    pub fn at(&self, us: u64) -> Instant {
        self.0 + std::time::Duration::from_micros(us)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Latency histograms of a run, one per rate step: send → deliver and send → RECEIPT.
pub struct Recorder {
    deliver: Vec<Mutex<Histogram<u64>>>,
    receipt: Vec<Mutex<Histogram<u64>>>,
}

impl Recorder {
    /// Histograms for `steps` steps.
    pub fn new(steps: usize) -> Recorder {
        Recorder {
            deliver: (0..steps).map(|_| Mutex::new(histogram())).collect(),
            receipt: (0..steps).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    fn add(hists: &[Mutex<Histogram<u64>>], samples: &mut Vec<(u32, u64)>) {
        for &(step, us) in samples.iter() {
            if let Some(h) = hists.get(step as usize) {
                let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
                h.saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
        }
        samples.clear();
    }

    /// The send → deliver histogram of `step`.
    pub fn deliver(&self, step: usize) -> Histogram<u64> {
        self.deliver
            .get(step)
            .map(|h| h.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_else(histogram)
    }

    /// The send → RECEIPT histogram of `step`.
    pub fn receipt(&self, step: usize) -> Histogram<u64> {
        self.receipt
            .get(step)
            .map(|h| h.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_else(histogram)
    }
}

/// Live counters of a run, for the coordinator to see when everything has arrived.
#[derive(Debug, Default)]
pub struct Progress {
    /// SENDs written.
    pub sent: AtomicU64,
    /// RECEIPTs for SENDs.
    pub receipted: AtomicU64,
    /// SENDs answered with an ERROR.
    pub refused: AtomicU64,
    /// Messages delivered to subscribers.
    pub delivered: AtomicU64,
    /// Connections that ended before the run did.
    pub dropped: AtomicU64,
}

impl Progress {
    fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one connection saw; tallies add up.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// SENDs written, per step.
    pub sent: Vec<u64>,
    /// RECEIPTs for SENDs, per step.
    pub receipted: Vec<u64>,
    /// SENDs answered with an ERROR frame.
    pub refused: u64,
    /// Messages delivered, per step of their sending.
    pub delivered: Vec<u64>,
    /// Time of the last delivery of each step's messages, µs since the epoch.
    pub last_delivery_us: Vec<u64>,
    /// Time of the last RECEIPT of each step's SENDs, µs since the epoch.
    pub last_receipt_us: Vec<u64>,
    /// Deliveries of a sender's message at or below one already delivered (duplicate or reordered).
    pub duplicates_or_reordered: u64,
    /// Deliveries whose room `seq` was not the previous one + 1.
    pub seq_gaps: u64,
    /// MESSAGE frames without a load-generator stamp.
    pub foreign: u64,
    /// ERROR frames (the first few kept in `errors`).
    pub error_frames: u64,
    /// Texts of the first ERROR frames and connection failures.
    pub errors: Vec<String>,
    /// Connections that ended before the run.
    pub dropped: u64,
    /// SENDs written more than 5 ms behind their schedule.
    pub late_sends: u64,
}

impl Tally {
    /// An empty tally for `steps` steps.
    pub fn new(steps: usize) -> Tally {
        Tally {
            sent: vec![0; steps],
            receipted: vec![0; steps],
            delivered: vec![0; steps],
            last_delivery_us: vec![0; steps],
            last_receipt_us: vec![0; steps],
            ..Tally::default()
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        add_vec(&mut self.sent, &other.sent);
        add_vec(&mut self.receipted, &other.receipted);
        add_vec(&mut self.delivered, &other.delivered);
        max_vec(&mut self.last_delivery_us, &other.last_delivery_us);
        max_vec(&mut self.last_receipt_us, &other.last_receipt_us);
        self.refused += other.refused;
        self.duplicates_or_reordered += other.duplicates_or_reordered;
        self.seq_gaps += other.seq_gaps;
        self.foreign += other.foreign;
        self.error_frames += other.error_frames;
        self.dropped += other.dropped;
        self.late_sends += other.late_sends;
        for e in &other.errors {
            if self.errors.len() < 10 {
                self.errors.push(e.clone());
            }
        }
    }

    /// Keeps an error text (the first few only).
    pub fn error(&mut self, text: String) {
        if self.errors.len() < 10 {
            self.errors.push(text);
        }
    }
}

fn add_vec(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

fn max_vec(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a = (*a).max(*b);
    }
}

/// One connection's checker and latency buffers.
pub struct Checker<'a> {
    epoch: Epoch,
    recorder: &'a Recorder,
    progress: &'a Progress,
    /// Highest message counter delivered per sender.
    last_n: HashMap<u32, u64>,
    last_seq: Option<u64>,
    deliver_buf: Vec<(u32, u64)>,
    receipt_buf: Vec<(u32, u64)>,
    /// What this connection saw.
    pub tally: Tally,
}

impl<'a> Checker<'a> {
    /// A checker for a run of `steps` steps.
    pub fn new(epoch: Epoch, recorder: &'a Recorder, progress: &'a Progress, steps: usize) -> Self {
        Checker {
            epoch,
            recorder,
            progress,
            last_n: HashMap::new(),
            last_seq: None,
            deliver_buf: Vec::with_capacity(BUFFER),
            receipt_buf: Vec::with_capacity(BUFFER),
            tally: Tally::new(steps),
        }
    }

    /// Checks one delivered message: its room `seq` (when the server sends one) and its stamp.
    pub fn delivered(&mut self, seq: Option<u64>, body: &[u8]) {
        if let Some(seq) = seq {
            if let Some(last) = self.last_seq
                && seq != last + 1
            {
                self.tally.seq_gaps += 1;
            }
            self.last_seq = Some(seq);
        }
        let Some(stamp) = Stamp::read(body) else {
            self.tally.foreign += 1;
            return;
        };
        let last = self.last_n.entry(stamp.sender).or_insert(0);
        if stamp.n <= *last {
            self.tally.duplicates_or_reordered += 1;
        } else {
            *last = stamp.n;
        }
        let now = self.epoch.us();
        let step = stamp.step as usize;
        if let Some(d) = self.tally.delivered.get_mut(step) {
            *d += 1;
            self.tally.last_delivery_us[step] = now;
        }
        Progress::bump(&self.progress.delivered, 1);
        self.deliver_buf
            .push((stamp.step, now.saturating_sub(stamp.at_us)));
        if self.deliver_buf.len() == BUFFER {
            Recorder::add(&self.recorder.deliver, &mut self.deliver_buf);
        }
    }

    /// Counts a SEND written in `step`.
    pub fn sent(&mut self, step: u32) {
        if let Some(s) = self.tally.sent.get_mut(step as usize) {
            *s += 1;
        }
        Progress::bump(&self.progress.sent, 1);
    }

    /// Counts a SEND written behind its schedule.
    pub fn late(&mut self) {
        self.tally.late_sends += 1;
    }

    /// Records a RECEIPT for a SEND of `step` intended at `at_us`.
    pub fn receipted(&mut self, step: u32, at_us: u64) {
        let now = self.epoch.us();
        if let Some(r) = self.tally.receipted.get_mut(step as usize) {
            *r += 1;
            self.tally.last_receipt_us[step as usize] = now;
        }
        Progress::bump(&self.progress.receipted, 1);
        self.receipt_buf.push((step, now.saturating_sub(at_us)));
        if self.receipt_buf.len() == BUFFER {
            Recorder::add(&self.recorder.receipt, &mut self.receipt_buf);
        }
    }

    /// Counts an ERROR frame; `for_send` when it answers a SEND.
    pub fn error_frame(&mut self, message: String, for_send: bool) {
        self.tally.error_frames += 1;
        if for_send {
            self.tally.refused += 1;
            Progress::bump(&self.progress.refused, 1);
        }
        self.tally.error(message);
    }

    /// Counts a connection that ended before the run did.
    pub fn dropped(&mut self, why: String) {
        self.tally.dropped += 1;
        Progress::bump(&self.progress.dropped, 1);
        self.tally.error(why);
    }

    /// Flushes the latency buffers and returns the tally.
    pub fn finish(mut self) -> Tally {
        Recorder::add(&self.recorder.deliver, &mut self.deliver_buf);
        Recorder::add(&self.recorder.receipt, &mut self.receipt_buf);
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(sender: u32, n: u64) -> String {
        let mut s = String::new();
        Stamp {
            step: 0,
            sender,
            n,
            at_us: 0,
        }
        .write_body(20, &mut s);
        s
    }

    #[test]
    fn flags_gaps_duplicates_and_reorders() {
        let (rec, prog) = (Recorder::new(1), Progress::default());
        let mut c = Checker::new(Epoch::now(), &rec, &prog, 1);
        c.delivered(Some(1), body(1, 1).as_bytes());
        c.delivered(Some(2), body(2, 1).as_bytes());
        c.delivered(Some(3), body(1, 2).as_bytes());
        assert_eq!(c.tally.seq_gaps + c.tally.duplicates_or_reordered, 0);
        c.delivered(Some(5), body(1, 3).as_bytes()); // seq 4 missing
        c.delivered(Some(6), body(1, 3).as_bytes()); // duplicate
        c.delivered(Some(7), body(2, 1).as_bytes()); // replayed
        c.delivered(None, b"not ours");
        let t = c.finish();
        assert_eq!(t.seq_gaps, 1);
        assert_eq!(t.duplicates_or_reordered, 2);
        assert_eq!(t.foreign, 1);
        assert_eq!(t.delivered, vec![6]);
        assert_eq!(rec.deliver(0).len(), 6);
        assert_eq!(Progress::get(&prog.delivered), 6);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new(2);
        a.sent[1] = 3;
        let mut b = Tally::new(2);
        b.sent[1] = 4;
        b.dropped = 1;
        a.merge(&b);
        assert_eq!(a.sent, vec![0, 7]);
        assert_eq!(a.dropped, 1);
    }
}
