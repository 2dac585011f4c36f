//! A SEND's attachments: the `attachments` header lists upload ids (comma-separated); the
//! sender's actor checks each upload (its owner, room, size and content) and the message carries
//! what they turned out to be. A message with attachments may have an empty body.

use banter_actors::account::{AttachError, MAX_ATTACHMENTS};
use banter_actors::model::{Attachment, MessageKind, RoomId, Seq, UserId};
use banter_actors::rules;
use banter_proto::stomp::Frame;
use uuid::Uuid;

use super::super::frames::{Fatal, fatal};
use super::meter::refuse;
use crate::state::AppState;

/// The upload ids of a SEND's `attachments` header (none without it).
pub(super) fn attachment_ids(frame: &Frame) -> Result<Vec<Uuid>, Fatal> {
    let Some(header) = frame.header("attachments") else {
        return Ok(Vec::new());
    };
    let malformed = || {
        refuse(
            "invalid",
            fatal(format!(
                "header 'attachments' must list 1 to {MAX_ATTACHMENTS} upload ids, comma-separated"
            )),
        )
    };
    let ids: Vec<Uuid> = header
        .split(',')
        .map(|id| Uuid::parse_str(id.trim()))
        .collect::<Result<_, _>>()
        .map_err(|_| malformed())?;
    if ids.is_empty() || ids.len() > MAX_ATTACHMENTS {
        return Err(malformed());
    }
    Ok(ids)
}

/// The body of a SEND: valid text, which may be empty when it carries attachments.
pub(super) fn body(frame: &Frame, max_bytes: usize, attached: bool) -> Result<String, Fatal> {
    if attached && frame.body.is_empty() {
        return Ok(String::new());
    }
    rules::validate_body(&frame.body, max_bytes)
        .map(str::to_owned)
        .map_err(|e| refuse("invalid", fatal(e.to_string())))
}

/// What a SEND to a room adds, from its `event` header: a message (no header, or `message`), an
/// `edit` or a `delete` of the message its `target-seq` header names. An edit carries the new text
/// and no attachment; a delete carries neither.
pub(super) fn kind(frame: &Frame) -> Result<MessageKind, Fatal> {
    let invalid = |m: &str| refuse("invalid", fatal(m.to_owned()));
    let target = || -> Result<Seq, Fatal> {
        match frame.header("target-seq").map(str::parse::<Seq>) {
            Some(Ok(seq)) if seq > 0 => Ok(seq),
            _ => Err(invalid(
                "an edit or a delete needs a 'target-seq' header: the seq of the message it changes",
            )),
        }
    };
    let kind = match frame.header("event") {
        None | Some("message") => MessageKind::Post,
        Some("edit") => MessageKind::Edit(target()?),
        Some("delete") => MessageKind::Delete(target()?),
        Some(_) => {
            return Err(invalid(
                "header 'event' must be 'message', 'edit' or 'delete'",
            ));
        }
    };
    if kind != MessageKind::Post && frame.header("attachments").is_some() {
        return Err(invalid("an edit or a delete carries no attachments"));
    }
    if matches!(kind, MessageKind::Delete(_)) && !frame.body.is_empty() {
        return Err(invalid("a delete carries no body"));
    }
    Ok(kind)
}

/// Has `user`'s actor check `uploads` for a message in `room`.
pub(super) async fn attach(
    state: &AppState,
    user: UserId,
    room: RoomId,
    uploads: Vec<Uuid>,
) -> Result<Vec<Attachment>, Fatal> {
    if uploads.is_empty() {
        return Ok(Vec::new());
    }
    let Some(accounts) = state.accounts.as_ref() else {
        return Err(refuse(
            "invalid",
            fatal("uploads are off on this node: a message cannot carry attachments"),
        ));
    };
    accounts
        .attach(user, room, uploads)
        .await
        .map_err(|e: AttachError| {
            let reason = match e {
                AttachError::Unavailable(_) => "unavailable",
                _ => "invalid",
            };
            refuse(reason, fatal(format!("{}: {e}", e.code())))
        })
}
