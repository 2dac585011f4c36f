//! Domain types shared by the actors, the ports and the adapters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies a user; assigned by the store at registration.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// Identifies a room (group, DM or feed); assigned by the store at creation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RoomId(pub i64);

/// Position of a message in its room: 1, 2, 3, … assigned by the room actor, never reused.
pub type Seq = u64;

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A registered user as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Store-assigned id.
    pub id: UserId,
    /// Unique login name, lowercase (see [`crate::rules::validate_username`]).
    pub username: String,
    /// Name shown to others.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Reference to an avatar object; filled by the media stage.
    pub avatar_ref: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// What registration hands to the store.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Validated, lowercase username.
    pub username: String,
    /// Validated display name.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// Kind of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A named room that users create, join and leave.
    Group,
    /// The direct-message room of exactly two users.
    Dm,
    /// A room fed by an ingest source.
    Feed,
}

impl RoomKind {
    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Dm => "dm",
            RoomKind::Feed => "feed",
        }
    }

    /// Parses the name stored in the database.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(RoomKind::Group),
            "dm" => Some(RoomKind::Dm),
            "feed" => Some(RoomKind::Feed),
            _ => None,
        }
    }
}

/// A room as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// Store-assigned id.
    pub id: RoomId,
    /// Group, DM or feed.
    pub kind: RoomKind,
    /// Display name (for a DM, empty: clients show the other member).
    pub name: String,
    /// User who created the room.
    pub created_by: UserId,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// Role of a member in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Created the room.
    Owner,
    /// Joined or was added.
    Member,
}

impl Role {
    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// Parses the name stored in the database.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A member of a room with the user's public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member.
    pub user_id: UserId,
    /// The member's username.
    pub username: String,
    /// The member's display name.
    pub display_name: String,
    /// Owner or member.
    pub role: Role,
    /// Highest seq the member has marked read (0: none).
    pub last_read_seq: Seq,
    /// When the member was last seen going offline, as stored (ms since the Unix epoch).
    pub last_seen_ms: Option<i64>,
}

/// A room as listed for one of its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub room: Room,
    /// The listing user's role.
    pub role: Role,
    /// Highest stored seq in the room (0: no message).
    pub last_seq: Seq,
    /// Highest seq the listing user marked read.
    pub last_read_seq: Seq,
    /// Stored messages with a seq above `last_read_seq`.
    pub unread: u64,
    /// For a DM, the other member's user id.
    pub dm_peer: Option<UserId>,
    /// Time of the newest stored message, or of the room's creation when it has none (ms since the
    /// epoch).
    pub last_activity_ms: i64,
}

/// A file attached to a message, as its upload was checked: what clients need to show it (and lay
/// an image out before it loads) without fetching it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The upload's id: a member asks for a download URL with it.
    pub id: Uuid,
    /// The file's name (cleaned; metadata only).
    pub name: String,
    /// Its content type, as its bytes show it.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Width and height in pixels, for an image.
    pub dimensions: Option<(u32, u32)>,
    /// A small JPEG preview, for an image.
    pub thumbnail: Option<bytes::Bytes>,
}

/// What a room item is: a message, or an event that changes an earlier message of the room. An
/// event takes a seq of its own, so it is journaled, acknowledged, stored and replayed in the room's
/// order like a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A message.
    #[default]
    Post,
    /// A new body for the message with this seq, from its author.
    Edit(Seq),
    /// The deletion of the message with this seq: its body and attachments are erased.
    Delete(Seq),
}

impl MessageKind {
    /// The `event` header of the item's MESSAGE frame.
    pub fn event(self) -> &'static str {
        match self {
            MessageKind::Post => "message",
            MessageKind::Edit(_) => "edit",
            MessageKind::Delete(_) => "delete",
        }
    }

    /// The seq of the message an event changes.
    pub fn target(self) -> Option<Seq> {
        match self {
            MessageKind::Post => None,
            MessageKind::Edit(t) | MessageKind::Delete(t) => Some(t),
        }
    }

    /// The code the journal, the wire and the store keep (0, 1, 2).
    pub fn code(self) -> i32 {
        match self {
            MessageKind::Post => 0,
            MessageKind::Edit(_) => 1,
            MessageKind::Delete(_) => 2,
        }
    }

    /// Reads a kind back from its code and target; `None` when they do not make one (an unknown
    /// code, an event without a target, a message with one).
    pub fn from_code(code: i32, target: Seq) -> Option<MessageKind> {
        match (code, target) {
            (0, 0) => Some(MessageKind::Post),
            (1, t) if t > 0 => Some(MessageKind::Edit(t)),
            (2, t) if t > 0 => Some(MessageKind::Delete(t)),
            _ => None,
        }
    }
}

/// What later events did to a message, as the store or a room's memory knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// When its latest edit was accepted (ms since the Unix epoch).
    pub edited_at_ms: Option<i64>,
    /// When it was deleted: its body and attachments are gone.
    pub deleted_at_ms: Option<i64>,
}

/// Why a journal record or a peer's message does not make a [`ChatMessage`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct MalformedMessage(pub String);

/// A chat message, as journaled, stored and delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatMessage {
    /// Room of the message.
    pub room_id: RoomId,
    /// Position in the room.
    pub seq: Seq,
    /// Globally unique id (UUIDv7).
    pub message_id: Uuid,
    /// Authenticated sender.
    pub sender_id: UserId,
    /// UTF-8 text.
    pub body: String,
    /// Milliseconds since the Unix epoch when the room accepted it.
    pub created_at_ms: i64,
    /// The sender's idempotency key (the SEND's `nonce` header), kept with the message so that a
    /// restarted room still answers a resend of it.
    pub nonce: Option<String>,
    /// The files attached to it, in the sender's order (empty for most messages: no allocation).
    pub attachments: Vec<Attachment>,
    /// A message, or an edit or a delete of an earlier one (whose new body is `body`).
    pub kind: MessageKind,
    /// The body's content type when it is not plain UTF-8 text (a feed's JSON).
    pub content_type: Option<String>,
    /// What later events did to it, when it is a message read back from the store or a room's
    /// memory (never journaled: the events are).
    pub marks: Marks,
}

impl ChatMessage {
    /// Applies `event` (a later item of the same room) when it changes this message: an edit sets the
    /// body (unless deleted), a delete erases the body and the attachments. Returns whether it did.
    pub fn apply(&mut self, event: &ChatMessage) -> bool {
        if self.kind != MessageKind::Post
            || event.kind.target() != Some(self.seq)
            || self.marks.deleted_at_ms.is_some()
        {
            return false;
        }
        match event.kind {
            MessageKind::Edit(_) => {
                self.body.clone_from(&event.body);
                self.marks.edited_at_ms = Some(event.created_at_ms);
            }
            MessageKind::Delete(_) => {
                self.body = String::new();
                self.attachments = Vec::new();
                self.marks.deleted_at_ms = Some(event.created_at_ms);
            }
            MessageKind::Post => return false,
        }
        true
    }
}

/// An attachment as clients read it, in a MESSAGE frame's `attachments` header (a JSON array)
/// and in history: `thumbnail` is a `data:image/jpeg;base64,…` URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentJson {
    /// The upload's id: a member asks for a download URL with it.
    pub id: String,
    /// The file's name (metadata only).
    pub name: String,
    /// Its content type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Width in pixels, for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels, for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A small JPEG preview as a data URL, for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
}

impl From<&Attachment> for AttachmentJson {
    fn from(a: &Attachment) -> Self {
        use base64::Engine as _;
        AttachmentJson {
            id: a.id.to_string(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            width: a.dimensions.map(|(w, _)| w),
            height: a.dimensions.map(|(_, h)| h),
            thumbnail: a.thumbnail.as_ref().map(|t| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(t);
                format!("data:image/jpeg;base64,{encoded}")
            }),
        }
    }
}

impl Attachment {
    /// Reads an `attachments` JSON array back (as [`Attachment::json`] wrote it).
    pub fn from_json(json: &str) -> Result<Vec<Attachment>, String> {
        use base64::Engine as _;
        let views: Vec<AttachmentJson> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        views
            .into_iter()
            .map(|v| {
                let thumbnail = match v.thumbnail.as_deref() {
                    None => None,
                    Some(url) => {
                        let data = url
                            .strip_prefix("data:image/jpeg;base64,")
                            .ok_or("a thumbnail is not a JPEG data URL")?;
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(data)
                            .map_err(|e| e.to_string())?;
                        Some(bytes::Bytes::from(bytes))
                    }
                };
                Ok(Attachment {
                    id: Uuid::parse_str(&v.id).map_err(|e| e.to_string())?,
                    name: v.name,
                    content_type: v.content_type,
                    size: v.size,
                    dimensions: v.width.zip(v.height),
                    thumbnail,
                })
            })
            .collect()
    }

    /// The `attachments` JSON array of `attachments`, as clients read it.
    pub fn json(attachments: &[Attachment]) -> String {
        let views: Vec<AttachmentJson> = attachments.iter().map(AttachmentJson::from).collect();
        serde_json::to_string(&views).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Returns the protobuf record of this attachment.
    pub fn to_proto(&self) -> banter_proto::v1::Attachment {
        let (width, height) = self.dimensions.unwrap_or((0, 0));
        banter_proto::v1::Attachment {
            id: bytes::Bytes::copy_from_slice(self.id.as_bytes()),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            width,
            height,
            thumbnail: self.thumbnail.clone().unwrap_or_default(),
        }
    }

    /// Builds an attachment from its protobuf record; fails on a malformed upload id.
    pub fn from_proto(p: banter_proto::v1::Attachment) -> Result<Self, uuid::Error> {
        Ok(Attachment {
            id: Uuid::from_slice(&p.id)?,
            name: p.name,
            content_type: p.content_type,
            size: p.size,
            dimensions: (p.width > 0 && p.height > 0).then_some((p.width, p.height)),
            thumbnail: (!p.thumbnail.is_empty()).then_some(p.thumbnail),
        })
    }
}

impl ChatMessage {
    /// Returns the protobuf record of this message, as the journal and peers carry it.
    pub fn to_proto(&self) -> banter_proto::v1::ChatMessage {
        banter_proto::v1::ChatMessage {
            room_id: self.room_id.0,
            seq: self.seq,
            message_id: bytes::Bytes::copy_from_slice(self.message_id.as_bytes()),
            sender_id: self.sender_id.0,
            body: self.body.clone(),
            created_at_ms: self.created_at_ms,
            epoch: 0,
            nonce: self.nonce.clone(),
            shard: 0,
            attachments: self.attachments.iter().map(Attachment::to_proto).collect(),
            kind: self.kind.code(),
            target_seq: self.kind.target().unwrap_or(0),
            content_type: self.content_type.clone(),
            edited_at_ms: self.marks.edited_at_ms,
            deleted_at_ms: self.marks.deleted_at_ms,
        }
    }

    /// Builds a message from its protobuf record; fails on a malformed id or kind.
    pub fn from_proto(p: banter_proto::v1::ChatMessage) -> Result<Self, MalformedMessage> {
        let malformed = |what: &str| MalformedMessage(what.to_owned());
        let kind = MessageKind::from_code(p.kind, p.target_seq)
            .filter(|k| k.target().is_none_or(|t| t < p.seq))
            .ok_or_else(|| malformed("kind and target seq"))?;
        Ok(ChatMessage {
            room_id: RoomId(p.room_id),
            seq: p.seq,
            message_id: Uuid::from_slice(&p.message_id).map_err(|_| malformed("message id"))?,
            sender_id: UserId(p.sender_id),
            body: p.body,
            created_at_ms: p.created_at_ms,
            nonce: p.nonce,
            attachments: p
                .attachments
                .into_iter()
                .map(Attachment::from_proto)
                .collect::<Result<_, _>>()
                .map_err(|_| malformed("attachment id"))?,
            kind,
            content_type: p.content_type,
            marks: Marks {
                edited_at_ms: p.edited_at_ms,
                deleted_at_ms: p.deleted_at_ms,
            },
        })
    }
}
