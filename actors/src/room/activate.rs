//! Activation: a room loads itself, its members (and their read markers) and its true last seq (from
//! the journal, which counts what is journaled but not yet stored), and refills its ring from the
//! store and the journal's tail, so a restarted room never reuses a seq and a resume right after a
//! restart is served from memory. The nonces of the refilled messages are remembered as durable, so a
//! resend of one of the room's last `ring_size` messages is answered with its RECEIPT across restarts.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};

use crate::ports::{AppendSink, JournalError};
use tokio::time::Instant;
use tracing::debug;

use super::members::ReadMarker;
use super::nonces::Nonces;
use super::ring::Ring;
use super::{NONCES_PER_ROOM, RoomArguments, RoomError, RoomMessage, RoomState};
use crate::encode::RoomFrames;
use crate::model::{ChatMessage, Role, RoomKind, Seq, UserId};

/// Builds the state of an activated room.
pub(super) async fn activate(
    myself: ActorRef<RoomMessage>,
    args: RoomArguments,
) -> Result<RoomState, ActorProcessingErr> {
    let ports = args.ports;
    if ports.ownership.serving(args.room_id).is_none() {
        return Err(RoomError::Moved(args.room_id).into());
    }
    let room = ports
        .store
        .room(args.room_id)
        .await?
        .ok_or(RoomError::NotFound(args.room_id))?;
    let members = ports.store.members(room.id).await?;
    // A feed room takes posts from its source's user only.
    let feeder = match room.kind {
        RoomKind::Feed => match ports.store.follow(room.id).await? {
            Some(follow) => ports.store.source(follow.source).await?.map(|s| s.user_id),
            None => None,
        },
        _ => None,
    };
    let reads: HashMap<UserId, ReadMarker> = members
        .iter()
        .filter(|m| m.last_read_seq > 0)
        .map(|m| {
            let seq = m.last_read_seq;
            (
                m.user_id,
                ReadMarker {
                    stored: seq,
                    wanted: seq,
                    writing: false,
                },
            )
        })
        .collect();
    let owners: HashSet<UserId> = members
        .iter()
        .filter(|m| m.role == Role::Owner)
        .map(|m| m.user_id)
        .collect();
    let members: HashMap<UserId, Arc<str>> = members
        .into_iter()
        .map(|m| (m.user_id, Arc::from(m.username.as_str())))
        .collect();
    let last_seq = ports.journal.last_seq(room.id).await?;
    let ring_size = args.config.ring_size.max(1);
    let per_user = args.config.max_sessions_per_user;
    let mut state = RoomState {
        id: room.id,
        ports: ports.clone(),
        config: args.config,
        directory: args.directory,
        sink: Arc::new(RoomSink(myself.clone())),
        frames: RoomFrames::new(room.id),
        members,
        owners,
        kind: room.kind,
        feeder,
        lookups: 0,
        reads,
        next_seq: last_seq,
        acked_seq: last_seq,
        ring: Ring::new(ring_size, RoomFrames::new(room.id)),
        pending: VecDeque::new(),
        // Never fewer than the ring: every refilled message's nonce must fit.
        nonces: Nonces::new(NONCES_PER_ROOM.max(ring_size)),
        unresolved: BTreeMap::new(),
        resolving: false,
        resolve_failures: 0,
        subscribers: super::Subscribers::new(room.id, per_user),
        typing: HashMap::new(),
        tasks_in_flight: 0,
        last_activity: Instant::now(),
        passivation_requested: false,
        stopping: false,
        lost: false,
    };
    let limit = u32::try_from(ring_size).unwrap_or(u32::MAX);
    let recent = ports
        .store
        .messages_before(room.id, Some(last_seq + 1), limit)
        .await?;
    // The store may lag the journal (a persister behind it): the tail comes from the journal.
    let stored_last = recent.first().map_or(0, |m| m.seq);
    let mut history: Vec<ChatMessage> = recent.into_iter().rev().collect();
    if stored_last < last_seq {
        // The ring keeps the newest `ring_size` messages, without a hole: when the journal is
        // further ahead of the store than that, the ring is the journal's newest messages alone.
        let from = stored_last.max(last_seq.saturating_sub(ring_size as Seq));
        if from > stored_last {
            history.clear();
        }
        history.extend(ports.journal.read_after(room.id, from, limit).await?);
    }
    for msg in history {
        let name = match state.members.get(&msg.sender_id) {
            Some(n) => n.clone(),
            None => ports
                .store
                .user_by_id(msg.sender_id)
                .await?
                .map_or_else(|| Arc::from(""), |u| Arc::from(u.username.as_str())),
        };
        if let Some(nonce) = &msg.nonce {
            state.nonces.insert(msg.sender_id, nonce, msg.seq);
            state
                .nonces
                .done(msg.sender_id, nonce, msg.seq, msg.message_id);
        }
        let tail = state.frames.message_tail(&msg, &name);
        state.ring.push(msg, tail, name);
    }
    let period = (state.config.idle_timeout / 4).max(Duration::from_millis(50));
    myself.send_interval(period, || RoomMessage::IdleCheck);
    debug!(room_id = %room.id, last_seq, kind = room.kind.as_str(), "room active");
    Ok(state)
}

/// The room's [`AppendSink`]: a settled run of appends becomes one message in the room's mailbox.
struct RoomSink(ActorRef<RoomMessage>);

impl AppendSink for RoomSink {
    fn settled(&self, first: Seq, last: Seq, result: Result<(), JournalError>) {
        // A room that stopped meanwhile has nothing left to answer (its senders were told).
        let _ = self.0.cast(RoomMessage::Journaled {
            first,
            last,
            result,
        });
    }
}
