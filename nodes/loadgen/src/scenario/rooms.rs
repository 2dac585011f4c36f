//! R rooms of M members; the first S members of each room send, everyone else (and the senders too
//! when `senders_subscribe`) subscribes. Fan-out is one room with one non-subscribing sender; chat is
//! many small rooms where everyone talks.
//!
//! The run is a list of [`Step`]s. An open-loop step offers a fixed total rate, each sender sending at
//! its share with a fixed phase; latencies count from the write of the SEND, and a SEND written more
//! than 5 ms behind its schedule is counted as late (a server that pushes back on its senders cannot
//! hide its queueing that way: the report shows the late sends). A closed-loop step
//! keeps `window` SENDs per sender waiting for their RECEIPT: the sustained rate to RECEIPT.
//! Every SEND asks for a RECEIPT; after the last step the run waits until every receipted message has
//! reached every subscriber of its room (or `drain_secs` pass) and counts what is missing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use banter_proto::stomp::{Command, Frame};
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Target;
use crate::api::{Account, Api};
use crate::check::{Checker, Epoch, Progress, Recorder, Tally};
use crate::client::{self, Ws};
use crate::report::{CpuUse, Latency, StepReport};
use crate::wire::{ServerFrame, Stamp, parse_u64};

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;
/// Most SENDs one sender writes per wake-up, so it keeps reading between bursts.
const MAX_BURST: u64 = 256;
/// A SEND written more than this behind its schedule counts as late (timer slack is ~1 ms).
const LATE_US: u64 = 5_000;

/// One step of offered load.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Total messages per second over all senders; `None` for a closed loop.
    pub rate: Option<f64>,
    /// SENDs each sender keeps waiting for their RECEIPT in a closed loop.
    pub window: u32,
    /// Seconds the step lasts.
    pub secs: f64,
}

/// Shape and load of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RoomsSpec {
    /// Scenario name in the report (`fanout`, `chat`, `write-path`, …).
    pub name: String,
    /// Rooms.
    pub rooms: usize,
    /// Members per room (distinct users).
    pub members: usize,
    /// Members of each room that send.
    pub senders_per_room: usize,
    /// Whether senders subscribe to their room too.
    pub senders_subscribe: bool,
    /// Load steps.
    pub steps: Vec<Step>,
    /// Seconds between two steps, for queues to drain.
    pub pause_secs: f64,
    /// Longest wait after the last step for every delivery.
    pub drain_secs: f64,
    /// Bytes of each message body.
    pub body_bytes: usize,
    /// Prefix of the usernames (a rerun with the same prefix logs its users in again).
    pub user_prefix: String,
    /// Client heart-beat offer.
    pub heart_beat: (u64, u64),
    /// Process ids of the server when it runs on this machine (the nodes of a cluster): each step
    /// then reports their CPU time per message, summed (what a shared machine's throughput figures
    /// hide).
    pub server_pids: Vec<u32>,
    /// Where connections go: member `m` of each room connects to `servers[m % len]`, so a room's
    /// members spread over a cluster's nodes (empty: the target's address).
    pub servers: Vec<std::net::SocketAddr>,
}

impl RoomsSpec {
    fn subscribers_per_room(&self) -> u64 {
        if self.senders_subscribe {
            self.members as u64
        } else {
            (self.members - self.senders_per_room) as u64
        }
    }

    fn senders(&self) -> usize {
        self.rooms * self.senders_per_room
    }
}

/// Result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RoomsReport {
    /// Scenario.
    pub scenario: String,
    /// `banter` or `baseline`.
    pub target: &'static str,
    /// The spec it ran.
    pub spec: RoomsSpec,
    /// Seconds spent registering users, creating rooms and connecting.
    pub setup_secs: f64,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// All connections' tallies together.
    pub tally: Tally,
    /// Deliveries expected but not seen by the end of the drain.
    pub missing: u64,
    /// Whether nothing was lost, duplicated, reordered, refused or dropped.
    pub clean: bool,
}

/// CPU seconds used so far by the server (when its process id is known) and by this process.
struct CpuSample {
    us: u64,
    server: Option<f64>,
    own: f64,
}

impl CpuSample {
    fn take(us: u64, server_pids: &[u32]) -> Result<CpuSample> {
        let server = if server_pids.is_empty() {
            None
        } else {
            let mut sum = 0.0;
            for &pid in server_pids {
                sum += crate::net::cpu_secs(pid)?;
            }
            Some(sum)
        };
        Ok(CpuSample {
            us,
            server,
            own: crate::net::cpu_secs(std::process::id())?,
        })
    }

    fn server_use(from: &CpuSample, to: &CpuSample, messages: u64) -> Option<CpuUse> {
        Some(CpuUse::of(
            to.server? - from.server?,
            to.us - from.us,
            messages,
        ))
    }

    fn own_use(from: &CpuSample, to: &CpuSample, messages: u64) -> CpuUse {
        CpuUse::of(to.own - from.own, to.us - from.us, messages)
    }
}

/// What one connection does.
struct Role {
    conn: usize,
    room: i64,
    subscribe: bool,
    /// Global sender index when it sends.
    sender: Option<u32>,
    token: Option<String>,
}

/// When each step starts, shared by every sender.
#[derive(Clone)]
struct Schedule {
    epoch: Epoch,
    starts_us: Vec<u64>,
    steps: Vec<Step>,
    senders: usize,
}

impl Schedule {
    fn end_us(&self, step: usize) -> u64 {
        self.starts_us[step] + (self.steps[step].secs * 1e6) as u64
    }

    /// Messages sender `sender` owes in open-loop step `step` and its rate: the step's total, split
    /// so the shares add up to it exactly.
    fn share(&self, step: usize, sender: u32) -> Option<(u64, f64)> {
        let st = self.steps.get(step)?;
        let rate = st.rate?;
        let total = (rate * st.secs).round() as u64;
        let n = self.senders.max(1) as u64;
        let i = u64::from(sender);
        let mine = total * (i + 1) / n - total * i / n;
        Some((mine, mine as f64 / st.secs))
    }

    fn last_end_us(&self) -> u64 {
        self.steps
            .len()
            .checked_sub(1)
            .map_or(0, |s| self.end_us(s))
    }
}

/// Sets up, runs and reports.
pub async fn run(target: Target, spec: RoomsSpec) -> Result<RoomsReport> {
    if spec.rooms == 0 || spec.members == 0 || spec.senders_per_room == 0 {
        bail!("rooms, members and senders must be at least 1");
    }
    if spec.senders_per_room > spec.members {
        bail!("more senders than members");
    }
    if spec.steps.is_empty() {
        bail!("no steps");
    }
    crate::net::raise_nofile();
    let setup = std::time::Instant::now();
    let roles = plan(target, &spec).await?;
    let servers = if spec.servers.is_empty() {
        vec![target.addr()]
    } else {
        spec.servers.clone()
    };
    let (servers, members) = (&servers, spec.members);
    let hb = spec.heart_beat;
    let mut conns: Vec<(Role, Ws)> = futures::stream::iter(roles)
        .map(|role| async move {
            let server = servers[(role.conn % members) % servers.len()];
            let spread = crate::net::is_loopback(server);
            let source = spread.then(|| crate::net::source_ip(role.conn));
            let mut ws = client::connect(server, source, role.token.as_deref(), hb)
                .await
                .with_context(|| format!("connection {}", role.conn))?;
            if role.subscribe {
                client::subscribe(&mut ws, &format!("/rooms/{}", role.room)).await?;
            }
            anyhow::Ok((role, ws))
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    conns.sort_by_key(|(r, _)| r.conn);
    let setup_secs = setup.elapsed().as_secs_f64();

    let epoch = Epoch::now();
    let mut starts_us = Vec::with_capacity(spec.steps.len());
    let mut t = 200_000u64;
    for step in &spec.steps {
        starts_us.push(t);
        t += ((step.secs + spec.pause_secs) * 1e6) as u64;
    }
    let schedule = Arc::new(Schedule {
        epoch,
        starts_us,
        steps: spec.steps.clone(),
        senders: spec.senders(),
    });
    let recorder = Arc::new(Recorder::new(spec.steps.len()));
    let progress = Arc::new(Progress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // CPU time of the server (when known) and of this load generator at each step's start; a step's
    // CPU runs to the next step's start (the pause lets its queues drain), the last one's to the end
    // of the drain.
    let cpu_at_starts = {
        let (schedule, pids) = (schedule.clone(), spec.server_pids.clone());
        tokio::spawn(async move {
            let mut at = Vec::with_capacity(schedule.starts_us.len());
            for &us in &schedule.starts_us {
                tokio::time::sleep_until(Instant::from_std(schedule.epoch.at(us))).await;
                at.push(CpuSample::take(us, &pids)?);
            }
            anyhow::Ok(at)
        })
    };
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(role, ws)| {
            let conn = Conn {
                ws,
                sender: role.sender,
                room: role.room,
                body_bytes: spec.body_bytes,
                schedule: schedule.clone(),
                recorder: recorder.clone(),
                progress: progress.clone(),
                stop: stop_rx.clone(),
            };
            tokio::spawn(conn.run())
        })
        .collect();

    // Wait for the last step, then for every delivery (or the drain limit).
    tokio::time::sleep_until(Instant::from_std(epoch.at(schedule.last_end_us()))).await;
    let subs = spec.subscribers_per_room();
    let drain_until = Instant::now() + Duration::from_secs_f64(spec.drain_secs);
    loop {
        let sent = Progress::get(&progress.sent);
        let answered = Progress::get(&progress.receipted) + Progress::get(&progress.refused);
        let expected = Progress::get(&progress.receipted) * subs;
        let everything = answered >= sent && Progress::get(&progress.delivered) >= expected;
        if everything || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut cpu = cpu_at_starts.await.context("CPU sampler")??;
    cpu.push(CpuSample::take(schedule.epoch.us(), &spec.server_pids)?);
    let _ = stop_tx.send(true);
    let mut tally = Tally::new(spec.steps.len());
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(&t),
            Err(e) => tally.error(format!("connection task failed: {e}")),
        }
    }

    let steps: Vec<StepReport> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            // A server behind its load answers after the step's end: rates count over the time the
            // answers took, from the step's start to its last RECEIPT (delivery), never less than the step.
            let span = |last_us: u64| {
                let took = last_us.saturating_sub(schedule.starts_us[i]) as f64 / 1e6;
                took.max(step.secs)
            };
            (
                i,
                step,
                span(tally.last_receipt_us[i]),
                span(tally.last_delivery_us[i]),
            )
        })
        .map(|(i, step, receipt_span, delivery_span)| StepReport {
            offered: step.rate,
            window: step.rate.is_none().then_some(step.window),
            secs: step.secs,
            sent: tally.sent[i],
            receipted: tally.receipted[i],
            messages_per_sec: tally.receipted[i] as f64 / receipt_span,
            delivered: tally.delivered[i],
            expected: tally.receipted[i] * subs,
            deliveries_per_sec: tally.delivered[i] as f64 / delivery_span,
            answer_secs: receipt_span,
            delivery_secs: delivery_span,
            deliver: Latency::of(&recorder.deliver(i)),
            receipt: Latency::of(&recorder.receipt(i)),
            server_cpu: CpuSample::server_use(&cpu[i], &cpu[i + 1], tally.receipted[i]),
            loadgen_cpu: CpuSample::own_use(&cpu[i], &cpu[i + 1], tally.receipted[i]),
        })
        .collect();
    let expected: u64 = steps.iter().map(|s| s.expected).sum();
    let delivered: u64 = tally.delivered.iter().sum();
    let missing = expected.saturating_sub(delivered);
    let answered: u64 = tally.receipted.iter().sum::<u64>() + tally.refused;
    let unanswered = tally.sent.iter().sum::<u64>().saturating_sub(answered);
    let clean = missing == 0
        && unanswered == 0
        && tally.refused == 0
        && tally.duplicates_or_reordered == 0
        && tally.seq_gaps == 0
        && tally.dropped == 0
        && tally.error_frames == 0
        && tally.foreign == 0;
    Ok(RoomsReport {
        scenario: spec.name.clone(),
        target: target.name(),
        spec,
        setup_secs,
        steps,
        tally,
        missing,
        clean,
    })
}

/// Registers (or logs in) the users, creates the rooms and joins them; returns every connection's role.
async fn plan(target: Target, spec: &RoomsSpec) -> Result<Vec<Role>> {
    let users = spec.rooms * spec.members;
    let (accounts, room_ids): (Vec<Option<Account>>, Vec<i64>) = match target {
        Target::Baseline(_) => (vec![None; users], (1..=spec.rooms as i64).collect()),
        Target::Banter(addr) => {
            let api = Api::new(addr)?;
            let accounts = api.accounts(&spec.user_prefix, users).await?;
            let owners: Vec<&Account> = (0..spec.rooms)
                .map(|r| &accounts[r * spec.members])
                .collect();
            let room_ids: Vec<i64> = futures::stream::iter(owners.iter().enumerate())
                .map(|(r, owner)| {
                    let api = &api;
                    let name = format!("{} {r}", spec.user_prefix);
                    async move { api.create_room(owner, &name).await }
                })
                .buffered(32)
                .try_collect()
                .await?;
            let joins: Vec<(&Account, i64)> = (0..spec.rooms)
                .flat_map(|r| {
                    let accounts = &accounts;
                    let room = room_ids[r];
                    (1..spec.members).map(move |m| (&accounts[r * spec.members + m], room))
                })
                .collect();
            api.join_all(&joins).await?;
            (accounts.into_iter().map(Some).collect(), room_ids)
        }
    };
    let mut roles = Vec::with_capacity(users);
    for (r, &room) in room_ids.iter().enumerate() {
        for m in 0..spec.members {
            let conn = r * spec.members + m;
            let sends = m < spec.senders_per_room;
            roles.push(Role {
                conn,
                room,
                subscribe: !sends || spec.senders_subscribe,
                sender: sends.then(|| (r * spec.senders_per_room + m) as u32),
                token: accounts[conn].as_ref().map(|a| a.token.clone()),
            });
        }
    }
    Ok(roles)
}

/// One connection during the run.
struct Conn {
    ws: Ws,
    sender: Option<u32>,
    room: i64,
    body_bytes: usize,
    schedule: Arc<Schedule>,
    recorder: Arc<Recorder>,
    progress: Arc<Progress>,
    stop: watch::Receiver<bool>,
}

/// A sender's position in the schedule.
struct SendState {
    sender: u32,
    destination: String,
    /// Phase in [0, 1): spreads senders over each period.
    phase: f64,
    step: usize,
    /// Messages sent in the current step.
    in_step: u64,
    /// Messages sent in the run (the stamp's counter).
    n: u64,
    outstanding: u32,
    body: String,
}

impl Conn {
    async fn run(mut self) -> Tally {
        let steps = self.schedule.steps.len();
        let recorder = self.recorder.clone();
        let progress = self.progress.clone();
        let mut checker = Checker::new(self.schedule.epoch, &recorder, &progress, steps);
        let mut send = self.sender.map(|sender| SendState {
            sender,
            destination: format!("/rooms/{}", self.room),
            phase: (f64::from(sender) * 0.618_033_988_75).fract(),
            step: 0,
            in_step: 0,
            n: 0,
            outstanding: 0,
            body: String::with_capacity(self.body_bytes + 32),
        });
        let mut stop = self.stop.clone();
        loop {
            let wake = match &send {
                Some(s) => self.next_wake(s),
                None => None,
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                msg = self.ws.next() => {
                    let Some(msg) = msg else {
                        checker.dropped("connection closed by the server".into());
                        break;
                    };
                    let msg = match msg {
                        Ok(m) => m,
                        Err(e) => {
                            checker.dropped(format!("read: {e}"));
                            break;
                        }
                    };
                    if let Some(data) = client::payload(&msg) {
                        Self::on_frame(data, &mut checker, send.as_mut());
                    }
                    if let Some(s) = send.as_mut()
                        && let Err(e) = self.send_due(s, &mut checker).await
                    {
                        checker.dropped(format!("send: {e}"));
                        break;
                    }
                }
                () = sleep => {
                    if let Some(s) = send.as_mut()
                        && let Err(e) = self.send_due(s, &mut checker).await
                    {
                        checker.dropped(format!("send: {e}"));
                        break;
                    }
                }
            }
        }
        let _ = self.ws.close(None).await;
        checker.finish()
    }

    fn on_frame(data: &[u8], checker: &mut Checker<'_>, send: Option<&mut SendState>) {
        let Some(frame) = ServerFrame::parse(data) else {
            checker.error_frame("unreadable frame".into(), false);
            return;
        };
        match frame.command {
            b"MESSAGE" if frame.header("event").is_none_or(|e| e == b"message") => {
                checker.delivered(frame.header_u64("seq"), frame.body);
            }
            b"RECEIPT" => {
                if let Some((step, at_us)) = frame.header("receipt-id").and_then(split_receipt) {
                    checker.receipted(step, at_us);
                    if let Some(s) = send {
                        s.outstanding = s.outstanding.saturating_sub(1);
                    }
                }
            }
            b"ERROR" => {
                let for_send = frame.header("receipt-id").and_then(split_receipt).is_some();
                if for_send && let Some(s) = send {
                    s.outstanding = s.outstanding.saturating_sub(1);
                }
                checker.error_frame(frame.header_str("message"), for_send);
            }
            _ => {}
        }
    }

    /// When this sender next has something to send; `None` once the schedule is done.
    fn next_wake(&self, s: &SendState) -> Option<Instant> {
        let sch = &self.schedule;
        let step = sch.steps.get(s.step)?;
        let start = sch.starts_us[s.step];
        let at_us = match sch.share(s.step, s.sender) {
            Some((total, per)) if s.in_step < total => {
                start + ((s.in_step as f64 + s.phase) / per * 1e6) as u64
            }
            Some(_) => sch.end_us(s.step),
            // Closed loop: woken by receipts; the timer only marks the step's start and end.
            None if s.outstanding < step.window => start,
            None => sch.end_us(s.step),
        };
        Some(Instant::from_std(
            sch.epoch.at(at_us.min(sch.end_us(s.step))),
        ))
    }

    /// Sends what the schedule says is due now, moving on to the next step when one ends.
    async fn send_due(&mut self, s: &mut SendState, checker: &mut Checker<'_>) -> Result<()> {
        let sch = self.schedule.clone();
        let now = sch.epoch.us();
        let mut written = 0u64;
        while let Some(step) = sch.steps.get(s.step) {
            if now >= sch.end_us(s.step) {
                s.step += 1;
                s.in_step = 0;
                continue;
            }
            let start = sch.starts_us[s.step];
            if now < start {
                break;
            }
            let share = sch.share(s.step, s.sender);
            let due = match share {
                Some((total, per)) => {
                    let by_now = ((now - start) as f64 * per / 1e6 - s.phase).floor() + 1.0;
                    (by_now.max(0.0) as u64)
                        .min(total)
                        .saturating_sub(s.in_step)
                }
                None => u64::from(step.window.saturating_sub(s.outstanding)),
            };
            let due = due.min(MAX_BURST - written);
            for _ in 0..due {
                // Latency counts from the write; how far the write is behind its schedule is
                // counted apart (a sender held up by the server shows there, not as a hidden gap).
                let at_us = sch.epoch.us();
                if let Some((_, per)) = share {
                    let intended = start + ((s.in_step as f64 + s.phase) / per * 1e6) as u64;
                    if at_us > intended + LATE_US {
                        checker.late();
                    }
                }
                s.n += 1;
                s.in_step += 1;
                s.outstanding += 1;
                let stamp = Stamp {
                    step: s.step as u32,
                    sender: s.sender,
                    n: s.n,
                    at_us,
                };
                stamp.write_body(self.body_bytes, &mut s.body);
                let frame = Frame::new(Command::Send)
                    .with_header("destination", s.destination.as_str())
                    .with_header("receipt", format!("{}.{}", s.step, at_us))
                    .with_header("content-type", "text/plain;charset=utf-8")
                    .with_body(s.body.clone().into_bytes());
                self.ws.feed(client::text(&frame)).await?;
                checker.sent(s.step as u32);
                written += 1;
            }
            break;
        }
        if written > 0 {
            self.ws.flush().await?;
        }
        Ok(())
    }
}

/// Splits a receipt id `step.at_us`.
fn split_receipt(id: &[u8]) -> Option<(u32, u64)> {
    let dot = id.iter().position(|&b| b == b'.')?;
    let step = u32::try_from(parse_u64(&id[..dot])?).ok()?;
    Some((step, parse_u64(&id[dot + 1..])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_step() {
        let sch = Schedule {
            epoch: Epoch::now(),
            starts_us: vec![0, 0],
            steps: vec![
                Step {
                    rate: Some(1397.0),
                    window: 0,
                    secs: 2.0,
                },
                Step {
                    rate: None,
                    window: 4,
                    secs: 1.0,
                },
            ],
            senders: 200,
        };
        let total: u64 = (0..200).map(|i| sch.share(0, i).expect("open").0).sum();
        assert_eq!(total, 2794);
        assert!(sch.share(1, 0).is_none());
    }

    #[test]
    fn receipt_ids() {
        assert_eq!(split_receipt(b"2.12345"), Some((2, 12345)));
        assert_eq!(split_receipt(b"subscribed"), None);
        assert_eq!(split_receipt(b"2."), None);
    }
}
