//! JSON shapes of the REST API (also the OpenAPI schemas).

use banter_actors::model::{
    AttachmentJson, ChatMessage, Member, Role, Room, RoomKind, RoomSummary, User,
};
use banter_actors::presence::Status;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user as others see it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: i64,
    /// Unique username.
    pub username: String,
    /// Name shown to others.
    pub display_name: String,
    /// The id of the user's avatar (an upload), if any; it changes with the avatar, so a client
    /// may cache the image under it. `GET /api/users/{id}/avatar` gives a URL of it.
    pub avatar_ref: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.0,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_ref: u.avatar_ref.clone(),
        }
    }
}

/// A room.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoomView {
    /// Room id.
    pub id: i64,
    /// `group`, `dm` or `feed`.
    #[schema(value_type = String)]
    pub kind: RoomKind,
    /// Display name (empty for a DM).
    pub name: String,
    /// Creator's user id.
    pub created_by: i64,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

impl From<&Room> for RoomView {
    fn from(r: &Room) -> Self {
        RoomView {
            id: r.id.0,
            kind: r.kind,
            name: r.name.clone(),
            created_by: r.created_by.0,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// A room as listed for one of its members.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoomSummaryView {
    /// The room.
    #[serde(flatten)]
    pub room: RoomView,
    /// The caller's role: `owner` or `member`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Highest seq in the room (0: none).
    pub last_seq: u64,
    /// The caller's read marker.
    pub last_read_seq: u64,
    /// Messages after the read marker.
    pub unread: u64,
    /// For a DM, the other member's id.
    pub dm_peer: Option<i64>,
    /// Time of the newest message, or of the room's creation when it has none, ms since the epoch:
    /// what the room list orders by.
    pub last_activity_ms: i64,
}

impl From<&RoomSummary> for RoomSummaryView {
    fn from(s: &RoomSummary) -> Self {
        RoomSummaryView {
            room: RoomView::from(&s.room),
            role: s.role,
            last_seq: s.last_seq,
            last_read_seq: s.last_read_seq,
            unread: s.unread,
            dm_peer: s.dm_peer.map(|u| u.0),
            last_activity_ms: s.last_activity_ms,
        }
    }
}

/// A member of a room.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: i64,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// `owner` or `member`.
    #[schema(value_type = String)]
    pub role: Role,
    /// The member's read marker.
    pub last_read_seq: u64,
    /// Whether the member has a connection open, on any node.
    pub online: bool,
    /// When an offline member was last seen going offline (ms since the Unix epoch): the later of
    /// what the answering node saw and what the store holds; null while online or when unknown.
    pub last_seen_ms: Option<i64>,
}

impl MemberView {
    /// The view of `m` with its presence.
    pub fn new(m: &Member, presence: Status) -> Self {
        MemberView {
            user_id: m.user_id.0,
            username: m.username.clone(),
            display_name: m.display_name.clone(),
            role: m.role,
            last_read_seq: m.last_read_seq,
            online: presence.online,
            last_seen_ms: if presence.online {
                None
            } else {
                presence.last_seen_ms.max(m.last_seen_ms)
            },
        }
    }
}

/// A chat message.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// Room id.
    pub room_id: i64,
    /// Position in the room.
    pub seq: u64,
    /// UUID of the message.
    pub message_id: String,
    /// Sender's user id.
    pub sender_id: i64,
    /// Text.
    pub body: String,
    /// Time the room accepted it, ms since the epoch.
    pub created_at_ms: i64,
    /// The files attached to it, in the sender's order (as in the MESSAGE frame's `attachments`
    /// header).
    #[serde(default)]
    pub attachments: Vec<AttachmentView>,
    /// The body's content type (`text/plain;charset=utf-8` unless a feed's JSON).
    pub content_type: String,
    /// When its latest edit was accepted (ms since the epoch); absent when never edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at_ms: Option<i64>,
    /// When it was deleted (ms since the epoch): its body is empty and its attachments are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at_ms: Option<i64>,
}

/// A file attached to a message.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    /// The upload's id (a UUID): a member asks for a download URL with it.
    pub id: String,
    /// The file's name (metadata only).
    pub name: String,
    /// Its content type, as its bytes showed it.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Width in pixels, for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels, for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A small JPEG preview of an image, as a `data:image/jpeg;base64,…` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
}

impl From<AttachmentJson> for AttachmentView {
    fn from(a: AttachmentJson) -> Self {
        AttachmentView {
            id: a.id,
            name: a.name,
            content_type: a.content_type,
            size: a.size,
            width: a.width,
            height: a.height,
            thumbnail: a.thumbnail,
        }
    }
}

impl From<&ChatMessage> for MessageView {
    fn from(m: &ChatMessage) -> Self {
        MessageView {
            room_id: m.room_id.0,
            seq: m.seq,
            message_id: m.message_id.to_string(),
            sender_id: m.sender_id.0,
            body: m.body.clone(),
            created_at_ms: m.created_at_ms,
            attachments: m
                .attachments
                .iter()
                .map(|a| AttachmentJson::from(a).into())
                .collect(),
            content_type: m
                .content_type
                .clone()
                .unwrap_or_else(|| "text/plain;charset=utf-8".to_owned()),
            edited_at_ms: m.marks.edited_at_ms,
            deleted_at_ms: m.marks.deleted_at_ms,
        }
    }
}
