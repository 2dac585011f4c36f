//! CONNECT: the token check, the heart-beat negotiation and the registration in the node's users
//! table, which refuses a user over `ws.max_sessions_per_user`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use banter_actors::delivery::{SessionHandle, SessionId, SessionInbox};
use banter_actors::model::UserId;
use banter_actors::user::{AttachError, Attached};
use banter_proto::stomp::{self, Command, Frame, Limits};
use bytes::BytesMut;
use tokio::time::Instant;
use tracing::debug;

use crate::auth::{TokenType, bearer};
use crate::state::AppState;
use crate::ws::frames::{Fatal, fatal};

/// An authenticated, registered connection.
pub(super) struct Connected {
    pub(super) handle: SessionHandle,
    pub(super) inbox: SessionInbox,
    pub(super) user: UserId,
    /// The session's place in the users table.
    pub(super) attached: Attached,
    /// Negotiated heart-beat periods (send, receive) in ms.
    pub(super) heart_beat: (u64, u64),
    /// When the access token expires.
    pub(super) expires: Instant,
    /// The encoded CONNECTED frame.
    pub(super) connected: BytesMut,
}

/// Returns the frame limits of sessions on this node.
pub(super) fn frame_limits(state: &AppState) -> Limits {
    let limits = &state.config.limits;
    Limits {
        max_frame_bytes: limits.max_frame_bytes.max(limits.max_body_bytes + 1024),
        max_body_bytes: limits.max_body_bytes,
        ..Limits::default()
    }
}

/// Returns the token of a CONNECT frame: `authorization: Bearer …` (any case of the header name, as
/// clients written for Spring's broker send `Authorization`), else `passcode`.
fn token(frame: &Frame) -> Option<&str> {
    frame
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| bearer(v))
        .or_else(|| frame.header("passcode"))
}

/// Authenticates a CONNECT frame and registers the session in the users table.
pub(super) async fn connect(state: &AppState, frame: Frame) -> Result<Connected, Fatal> {
    if !matches!(frame.command, Command::Connect | Command::Stomp) {
        return Err(fatal(format!(
            "expected CONNECT, got {}",
            frame.command.as_str()
        )));
    }
    if let Some(versions) = frame.header("accept-version")
        && !versions.split(',').any(|v| v.trim() == "1.2")
    {
        return Err(fatal("only STOMP 1.2 is supported"));
    }
    let token = token(&frame).ok_or_else(|| {
        fatal("missing token: send 'authorization: Bearer <token>' or 'passcode'")
    })?;
    let claims = state
        .keys
        .verify(token, TokenType::Access)
        .await
        .map_err(|e| fatal(e.to_string()))?;
    let user = claims.user_id().map_err(|e| fatal(e.to_string()))?;
    let left_ms = claims
        .exp
        .saturating_mul(1000)
        .saturating_sub(state.now_ms())
        .max(0);
    let expires = Instant::now() + Duration::from_millis(left_ms.unsigned_abs());
    let client_hb = match frame.header("heart-beat") {
        Some(v) => stomp::parse_heart_beat(v).map_err(|e| fatal(e.to_string()))?,
        None => (0, 0),
    };
    let hb = state.config.ws.heartbeat_ms;
    let heart_beat = stomp::negotiate_heart_beat(client_hb, (hb, hb));
    let id = SessionId::new(
        state.node,
        state.next_session.fetch_add(1, Ordering::Relaxed),
    );
    let ws = &state.config.ws;
    let (handle, inbox) = SessionHandle::bounded(id, user, ws.outbox_frames, ws.outbox_bytes);
    let attached = state.users.attach(&handle).map_err(|e| match e {
        AttachError::TooManySessions(max) => fatal(format!(
            "too many connections: a user may have at most {max} at once"
        )),
    })?;
    state.routes.session_started(&handle);
    let mut connected = BytesMut::new();
    Frame::new(Command::Connected)
        .with_header("version", "1.2")
        .with_header("heart-beat", format!("{},{}", heart_beat.0, heart_beat.1))
        .with_header("server", concat!("banter/", env!("CARGO_PKG_VERSION")))
        .with_header("session", id.to_string())
        .with_header("user-id", user.to_string())
        .encode(&mut connected);
    debug!(session = %id, user_id = %user, "session connected");
    Ok(Connected {
        handle,
        inbox,
        user,
        attached,
        heart_beat,
        expires,
        connected,
    })
}
