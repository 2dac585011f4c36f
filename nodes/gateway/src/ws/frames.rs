//! What a session reads out of client frames: destinations, required headers, and the fatal errors
//! that end a session with a STOMP ERROR frame.

use banter_actors::encode::USER_QUEUE;
use banter_actors::model::RoomId;
use banter_proto::stomp::Frame;

/// Why a session ends: with an ERROR frame, or (`unwritable`) by dropping a connection that takes no
/// more writes.
pub(super) struct Fatal {
    /// Text of the ERROR frame's `message` header (or, when unwritable, of the log line).
    pub(super) message: String,
    /// The `receipt` of the frame that caused it.
    pub(super) receipt_id: Option<String>,
    /// The connection cannot be written to (closed, or stalled past the write deadline): it is
    /// dropped without an ERROR frame.
    pub(super) unwritable: bool,
    /// The WebSocket close code sent after the ERROR frame (1000, normal, when `None`).
    pub(super) close_code: Option<u16>,
    /// The trace of the frame that caused it (its valid `traceparent`), named in the ERROR's
    /// `trace-id` header for a user to quote, as REST errors name theirs.
    pub(super) trace_id: Option<String>,
}

pub(super) fn fatal(message: impl Into<String>) -> Fatal {
    Fatal {
        message: message.into(),
        receipt_id: None,
        unwritable: false,
        close_code: None,
        trace_id: None,
    }
}

/// WebSocket close code 1012, "service restart": the node is going away and the client should
/// reconnect (to another node) and resume with `since`.
pub(super) const CLOSE_SERVICE_RESTART: u16 = 1012;

/// The node is shutting down: an ERROR telling the client to reconnect elsewhere, then close 1012.
pub(super) fn reconnect_elsewhere() -> Fatal {
    Fatal {
        close_code: Some(CLOSE_SERVICE_RESTART),
        ..fatal("server shutting down: reconnect elsewhere and resume with 'since'")
    }
}

/// The connection takes no more writes: it is dropped.
pub(super) fn unwritable(message: impl Into<String>) -> Fatal {
    Fatal {
        unwritable: true,
        ..fatal(message)
    }
}

/// Where a SEND or SUBSCRIBE goes.
pub(super) enum Target {
    Room(RoomId),
    Typing(RoomId),
    Read(RoomId),
    UserQueue,
}

pub(super) fn parse_destination(dest: &str) -> Result<Target, Fatal> {
    if dest == USER_QUEUE {
        return Ok(Target::UserQueue);
    }
    let unknown = || fatal(format!("unknown destination '{dest}'"));
    let rest = dest.strip_prefix("/rooms/").ok_or_else(unknown)?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let id: i64 = id.parse().map_err(|_| unknown())?;
    let room = RoomId(id);
    match tail {
        "" => Ok(Target::Room(room)),
        "typing" => Ok(Target::Typing(room)),
        "read" => Ok(Target::Read(room)),
        _ => Err(unknown()),
    }
}

pub(super) fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, Fatal> {
    frame.header(name).ok_or_else(|| Fatal {
        receipt_id: frame.header("receipt").map(str::to_owned),
        ..fatal(format!(
            "missing header '{name}' in {}",
            frame.command.as_str()
        ))
    })
}
